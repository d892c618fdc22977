# syntax=docker/dockerfile:1
# pixpool's image: every service from one image, as `docker run IMAGE <subcommand> [flags]`
# (frontend, cache-node, manager, autoscaler, gc; `up` listens on loopback only, so it is no use
# in a container). There is no build step: Node 24 strips the TypeScript itself at run time.
#
# Stage 1 installs the production dependencies from the lock file; stage 2 is the same slim
# Node 24 with those and the sources only, run as an unprivileged user that owns nothing but
# /data. Configure with the variables of `pixpool <service> --help` (docs/deploy.md).

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev also leaves out the `node` package: the image's own Node 24 runs the services.
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error && npm cache clean --force

FROM node:24-bookworm-slim AS runtime
# A fixed numeric id, so Kubernetes' runAsNonRoot can check it without a passwd lookup.
RUN groupadd --system --gid 10001 pixpool \
 && useradd --system --uid 10001 --gid pixpool --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin pixpool \
 && mkdir /data && chown pixpool:pixpool /data
# Services listen on every interface of the container; off loopback each one refuses to start
# without PIXPOOL_SECRET (and the manager without PIXPOOL_ADMIN_TOKEN too).
ENV NODE_ENV=production \
    PIXPOOL_HOST=0.0.0.0 \
    PIXPOOL_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY deploy/docker/healthcheck.mjs ./deploy/docker/healthcheck.mjs
USER 10001:10001
EXPOSE 5000 5001 5002 5003
# /health of whichever service the container runs, on the port it listens on (healthcheck.mjs).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["node", "/app/bin/pixpool.js"]
CMD ["frontend"]
