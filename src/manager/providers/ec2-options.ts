/**
 * The ec2 provider's settings, their checks and the tags it finds its nodes by. Kept apart from
 * the provider so the `pixpool` command can check its flags without loading the AWS SDK: a bad
 * combination stops the command with one line before anything starts.
 *
 * Three modes: `launch` runs an instance from a launch template per node and terminates it on a
 * shrink; `instances` starts and stops a fixed set of pre-provisioned instances (the original
 * system's pool); `asg` sizes an Auto Scaling group whose desired capacity is the pool's size.
 */

export const EC2_MODES = ['launch', 'instances', 'asg'] as const;
export type Ec2Mode = (typeof EC2_MODES)[number];

/** Every instance of a pool carries this tag, with the pool's name as its value. */
export const POOL_TAG = 'pixpool:pool';
/** The pool's node id an instance serves as; set when it joins, removed (instances) or ended. */
export const NODE_TAG = 'pixpool:node-id';

export const DEFAULT_POOL_NAME = 'pixpool';
export const DEFAULT_BOOT_TIMEOUT_MS = 300_000;

export interface Ec2Settings {
  mode: Ec2Mode;
  /** `launch`: the launch template, by name or by id (lt-…). */
  launchTemplate?: string | undefined;
  /** `launch`: a version number, $Latest or $Default (unset: the template's default version). */
  launchTemplateVersion?: string | undefined;
  /** `asg`: the Auto Scaling group's name. */
  asgName?: string | undefined;
  /** Unset: the SDK's own lookup (AWS_REGION, the profile, instance metadata). */
  region?: string | undefined;
  /** How long a started instance has to announce its node, ms. */
  bootTimeoutMs?: number | undefined;
}

export type CheckedEc2Settings = Ec2Settings & { bootTimeoutMs: number };

// A Kubernetes label value is the stricter of the two engines' rules, so one name fits both.
const POOL_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/** A pool name: the value of the pool tag (or label) every node of the pool carries. */
export function parsePoolName(value: string): string {
  if (!POOL_NAME.test(value)) {
    throw new Error(
      `A pool name is 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; got "${value}".`,
    );
  }
  return value;
}

const LAUNCH_TEMPLATE_ID = /^lt-[0-9a-f]{8,17}$/;
const LAUNCH_TEMPLATE_NAME = /^[a-zA-Z0-9().\-/_]{3,128}$/;
const TEMPLATE_VERSION = /^(?:[1-9]\d*|\$Latest|\$Default)$/;

/** A launch template reference as RunInstances takes it. */
export function launchTemplateSpec(template: string, version: string | undefined) {
  return {
    ...(LAUNCH_TEMPLATE_ID.test(template)
      ? { LaunchTemplateId: template }
      : { LaunchTemplateName: template }),
    ...(version !== undefined && { Version: version }),
  };
}

/**
 * Checks that the settings make sense together and returns them complete; throws an Error whose
 * message names the flag to fix.
 */
export function checkEc2Settings(settings: Ec2Settings): CheckedEc2Settings {
  const { mode, launchTemplate, launchTemplateVersion, asgName } = settings;
  if (!EC2_MODES.includes(mode)) {
    throw new Error(`--ec2-mode must be one of ${EC2_MODES.join(', ')}; got "${mode}".`);
  }
  if (mode === 'launch' && !launchTemplate) {
    throw new Error(
      '--ec2-mode launch needs --ec2-launch-template (a launch template name or id).',
    );
  }
  if (mode !== 'launch' && (launchTemplate || launchTemplateVersion)) {
    throw new Error(
      `--ec2-launch-template and --ec2-launch-template-version are for --ec2-mode launch, not ${mode}.`,
    );
  }
  if (launchTemplate && !LAUNCH_TEMPLATE_ID.test(launchTemplate)) {
    if (!LAUNCH_TEMPLATE_NAME.test(launchTemplate)) {
      throw new Error(
        `--ec2-launch-template must be a launch template id (lt-…) or a name of 3 to 128 letters, digits and ().-/_; got "${launchTemplate}".`,
      );
    }
  }
  if (launchTemplateVersion !== undefined && !TEMPLATE_VERSION.test(launchTemplateVersion)) {
    throw new Error(
      `--ec2-launch-template-version must be a version number, $Latest or $Default; got "${launchTemplateVersion}".`,
    );
  }
  if (mode === 'asg' && !asgName) {
    throw new Error('--ec2-mode asg needs --ec2-asg (the Auto Scaling group to size).');
  }
  if (mode !== 'asg' && asgName) {
    throw new Error(`--ec2-asg is for --ec2-mode asg, not ${mode}.`);
  }
  const bootTimeoutMs = settings.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  if (!(bootTimeoutMs > 0) || !Number.isFinite(bootTimeoutMs)) {
    throw new Error(`--ec2-boot-timeout-s must be above 0; got ${bootTimeoutMs / 1000}.`);
  }
  return {
    mode,
    launchTemplate,
    launchTemplateVersion,
    asgName,
    region: settings.region,
    bootTimeoutMs,
  };
}
