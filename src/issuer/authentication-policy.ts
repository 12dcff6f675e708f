/**
 * The authentication policy (docs/strong-sign-in.md) as pure functions, beside the token format
 * policy (token-policy.ts): what a sign-in is worth (`acr` from its `amr`), what a request needs
 * (from `acr_values`, an essential `acr` claim, `max_age`, the resource server and the account), and
 * whether a session is enough or must step up.
 */

/** Password alone (or any single factor). */
export const ACR_PASSWORD = 'urn:login:acr:password';
/** Two factors: password and a one-time code or a passkey, or a passkey with user verification alone. */
export const ACR_MFA = 'urn:login:acr:mfa';
/** The levels, weakest first (discovery's `acr_values_supported`). */
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA] as const;
/** One of {@link ACR_VALUES}. */
export type Acr = (typeof ACR_VALUES)[number];

/** RFC 8176 authentication method references this server reports. */
export type Amr = 'pwd' | 'otp' | 'hwk' | 'swk' | 'user' | 'mfa';

/** Whether `value` is one of the levels this server knows. */
export const isAcr = (value: unknown): value is Acr => typeof value === 'string' && (ACR_VALUES as readonly string[]).includes(value);

/** The rank of a level (higher is stronger); -1 for anything unknown, which meets nothing. */
export const acrRank = (acr: string | undefined): number => (isAcr(acr) ? ACR_VALUES.indexOf(acr) : -1);

/** Whether a sign-in at `have` meets the level `need` (a stronger one does). */
export const acrMeets = (have: string | undefined, need: Acr): boolean => acrRank(have) >= acrRank(need);

/** The stronger of two requirements (`undefined`: none). */
export function strongerAcr(a: Acr | undefined, b: Acr | undefined): Acr | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return acrRank(a) >= acrRank(b) ? a : b;
}

/**
 * What a sign-in made of these methods is worth. Two distinct kinds of factor, or a passkey whose
 * authenticator verified the person (`user` beside `hwk`/`swk`), make {@link ACR_MFA}.
 */
export function acrForMethods(amr: readonly string[]): Acr {
  const kinds = new Set(amr.filter((method) => method !== 'mfa'));
  const key = kinds.has('hwk') || kinds.has('swk');
  if (kinds.has('pwd') && (kinds.has('otp') || key)) return ACR_MFA;
  if (key && kinds.has('user')) return ACR_MFA;
  return ACR_PASSWORD;
}

/** The `amr` to report for these methods: each once, with `mfa` added when they make two factors. */
export function amrFor(methods: readonly Amr[]): Amr[] {
  const unique = [...new Set(methods.filter((method) => method !== 'mfa'))];
  return acrForMethods(unique) === ACR_MFA ? [...unique, 'mfa'] : unique;
}

/** What an authorization request itself asks of the sign-in. */
export interface RequestedAuthentication {
  /** `acr_values`, in the order given; unknown values are ignored (see {@link acrFromValues}). */
  readonly acrValues?: readonly string[] | undefined;
  /** The values of an essential `acr` claim (`claims.id_token.acr` with `essential: true`). */
  readonly essentialAcr?: readonly string[] | undefined;
}

/** The authentication policy of a resource server (its admin fields). */
export interface ResourceServerAuthentication {
  /** Every person-held token for the API needs at least this. */
  readonly requiredAcr: Acr | null;
  readonly sensitiveScopes: readonly string[];
  /** A token asking for a sensitive scope needs at least this. */
  readonly sensitiveScopesAcr: Acr | null;
  /** A token asking for a sensitive scope needs a sign-in at most this many seconds old. */
  readonly sensitiveScopesAcrMaxAge: number | null;
}

/** What a sign-in must be worth for one request. */
export interface AuthenticationRequirement {
  /** The weakest level that will do; `undefined`: any sign-in. */
  readonly acr: Acr | undefined;
  /** The oldest sign-in that will do, in seconds; `undefined`: any age. */
  readonly maxAgeSeconds: number | undefined;
}

/**
 * The weakest known level in a list of acceptable ones (`acr_values`, or an essential claim's
 * values): any of them would satisfy the client, so the weakest is what must be reached. `undefined`
 * when the list names no level this server knows.
 */
export function acrFromValues(values: readonly string[] | undefined): Acr | undefined {
  const known = (values ?? []).filter(isAcr);
  if (known.length === 0) return undefined;
  return known.reduce((weakest, acr) => (acrRank(acr) < acrRank(weakest) ? acr : weakest));
}

/**
 * What a request needs, from what it asks (`acr_values`, an essential `acr` claim), the resource
 * server its token is for (with the scopes asked) and the account (its "MFA required" flag). The
 * strongest of them wins; a client never lowers what the API or the account requires.
 */
export function requiredAuthentication(input: {
  readonly requested?: RequestedAuthentication;
  readonly resourceServer?: ResourceServerAuthentication | undefined;
  readonly scopes?: Iterable<string>;
  readonly accountMfaRequired?: boolean;
}): AuthenticationRequirement {
  let acr = strongerAcr(acrFromValues(input.requested?.acrValues), acrFromValues(input.requested?.essentialAcr));
  let maxAgeSeconds: number | undefined;
  const rs = input.resourceServer;
  if (rs) {
    acr = strongerAcr(acr, rs.requiredAcr ?? undefined);
    const sensitive = new Set(rs.sensitiveScopes);
    if ([...(input.scopes ?? [])].some((scope) => sensitive.has(scope))) {
      acr = strongerAcr(acr, rs.sensitiveScopesAcr ?? undefined);
      maxAgeSeconds = rs.sensitiveScopesAcrMaxAge ?? undefined;
    }
  }
  if (input.accountMfaRequired) acr = strongerAcr(acr, ACR_MFA);
  return { acr, maxAgeSeconds };
}

/** How a sign-in falls short of a requirement. */
export type AuthenticationShortfall =
  /** It is enough. */
  | 'none'
  /** Too weak: the person proves one more factor (no password again). */
  | 'step_up'
  /** Too old: the person signs in again. */
  | 'reauthenticate';

/**
 * Whether a sign-in (its `acr` and `auth_time`, epoch seconds) meets `requirement` at `now` (epoch
 * seconds). An old sign-in is signed in again (which also reaches the level); a weak one steps up.
 */
export function authenticationShortfall(
  signIn: { readonly acr: string | undefined; readonly authTime: number | undefined },
  requirement: AuthenticationRequirement,
  now: number,
): AuthenticationShortfall {
  if (requirement.maxAgeSeconds !== undefined && (signIn.authTime === undefined || now - signIn.authTime > requirement.maxAgeSeconds)) {
    return 'reauthenticate';
  }
  if (requirement.acr !== undefined && !acrMeets(signIn.acr, requirement.acr)) return 'step_up';
  return 'none';
}
