/**
 * The shape of an announcement, checked before EC2 is asked anything: the instance id must look
 * like one and the URL must be an http(s) origin, whose host is then compared with the
 * instance's addresses. A claim refused here or by the provider never reaches a view; the
 * manager answers it 403 with the message, which the node logs for its operator.
 */
import { isInstanceId } from './ec2-engine.ts';
import { ClaimRefused, type NodeClaim } from './provider.ts';

export function refuse(message: string): never {
  throw new ClaimRefused(message);
}

/** The claim's URL as an origin and the host it names (lower case, IPv6 without brackets). */
export function checkClaim(claim: NodeClaim): { origin: string; host: string } {
  if (typeof claim.ref !== 'string' || !isInstanceId(claim.ref)) {
    refuse(`"${claim.ref}" is not an EC2 instance id (i-…)`);
  }
  const url = typeof claim.url === 'string' ? URL.parse(claim.url) : null;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    refuse(`"${claim.url}" is not an http(s) URL`);
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    refuse(`"${claim.url}" must be an origin: scheme, host and port only`);
  }
  return { origin: url.origin, host: hostOf(url) };
}

export const hostOf = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
