/**
 * oidc-provider's interactions, with our pages: the provider sends the browser to
 * `/interaction/:uid` whenever it needs a person to sign in or to consent, and these routes finish the
 * interaction and send the browser back to it. Every answer is one of our HTML pages (pages.ts) or a
 * 303 back to the provider.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import Provider, { errors } from 'oidc-provider';
import { selectAccountForSignIn } from '../accounts/account-repository.js';
import { isPossibleEmail } from '../accounts/account.js';
import type { AccountRegistry } from '../accounts/account-registry.js';
import { verifyPassword } from '../accounts/password.js';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import type { FactorSettings } from '../factors/factor-service.js';
import { sessionsWithBackchannelLogout } from '../issuer/backchannel-logout.js';
import type { TokenStore } from '../tokens/token-store.js';
import { FactorSteps } from './factor-steps.js';
import { type Logger } from '../observability/logger.js';
import { requestContext } from '../shared/request-context.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { readFormBody } from './form-body.js';
import { sendPageFailure, type ExpectedPageFailure } from './page-failure.js';
import { setPageHeaders } from './page-headers.js';
import { PASSKEY_SCRIPT } from './factor-pages.js';
import { consentPage, ICON, ICON_PATH, loginPage, STYLESHEET, STYLESHEET_PATH, type ConsentItem } from './pages.js';
import type { SignInLimiter } from './sign-in-limiter.js';

/** Where the provider sends the browser for an interaction (its `interactions.url`). */
export const interactionPath = (uid: string): string => `/interaction/${uid}`;

/** What the interaction routes work with. */
export interface InteractionDependencies {
  readonly currentProvider: () => Provider;
  readonly db: Db;
  readonly clients: ClientRegistry;
  readonly accounts: AccountRegistry;
  readonly resourceServers: ResourceServerRegistry;
  readonly limiter: SignInLimiter;
  readonly logger: Logger;
  readonly bus: ChangeBus;
  /** Where a factor change ends the account's sessions. */
  readonly tokenStore: TokenStore;
  readonly factorSettings: FactorSettings;
}

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** What a consent prompt says is not yet granted. */
interface MissingGrant {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

/** An interaction request we refuse, shown on the error page. */
class InteractionError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

const SIGN_IN_FAILED = 'The email or password is not right.';

const OIDC_SCOPE_WORDS: Record<string, string> = {
  openid: 'Know which account you signed in with',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Keep this access when you are not using it, until you take it back',
  groups: 'See which groups you belong to',
};

/** What the sign-in pages make of their own errors and the provider's; `undefined` for any other. */
function expectedFailureOf(error: unknown): ExpectedPageFailure | undefined {
  if (error instanceof InteractionError) return error;
  if (error instanceof errors.SessionNotFound) {
    return { status: 400, error: 'session_not_found', description: 'this sign-in has expired or was started in another browser' };
  }
  if (error instanceof errors.OIDCProviderError && error.expose) return { status: error.status, error: error.error, description: error.error_description };
  return undefined;
}

function sendPage(ctx: Context, status: number, markup: string, formTargets?: readonly string[], inlineScripts?: readonly string[]): void {
  setPageHeaders(ctx, { ...(formTargets === undefined ? {} : { formTargets }), ...(inlineScripts === undefined ? {} : { inlineScripts }) });
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = markup;
}

/** Sends the browser back to the provider, which goes on with the authorization request. */
function resume(ctx: Context, returnTo: string): void {
  ctx.status = 303;
  ctx.redirect(returnTo);
  ctx.set('Cache-Control', 'no-store');
}

/** The routes of the interaction pages, and the stylesheet and icon they share. */
export function interactionRoutes(deps: InteractionDependencies): Router {
  const router = new Router();

  async function details(ctx: Context): Promise<Interaction> {
    const interaction = await deps.currentProvider().interactionDetails(ctx.req, ctx.res);
    const { uid } = ctx.params as { uid?: string };
    if (interaction.uid !== uid) throw new InteractionError(400, 'invalid_request', 'this page belongs to another sign-in');
    return interaction;
  }

  const clientName = async (interaction: Interaction) => {
    const clientId = String(interaction.params.client_id);
    return (await deps.clients.get(clientId))?.clientName ?? clientId;
  };
  // Browsers apply a form's CSP form-action to every redirect after the submission, ending at the client.
  const formTargets = (interaction: Interaction) => [String(interaction.params.redirect_uri)];

  // The steps after the password (second factor, enrolment, step-up): factor-steps.ts.
  const steps = new FactorSteps(
    { ...deps, sessions: sessionsWithBackchannelLogout(deps.tokenStore, deps.currentProvider, deps.logger) },
    {
      sendPage: (ctx, status, markup, interaction, inlineScripts) => sendPage(ctx, status, markup, formTargets(interaction), inlineScripts),
      resume,
      details,
      fail: (status, error, description) => new InteractionError(status, error, description),
    },
  );

  async function showLogin(ctx: Context, interaction: Interaction, status: number, alert?: string, email?: string): Promise<void> {
    const hint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : undefined;
    const markup = loginPage({
      action: `${interactionPath(interaction.uid)}/login`,
      clientName: await clientName(interaction),
      email: email ?? hint,
      alert,
      passkey: await steps.passkeyOnLoginPage(interaction),
    });
    sendPage(ctx, status, markup, formTargets(interaction), [PASSKEY_SCRIPT]);
  }

  /** Grants what the consent prompt found missing, and resumes. */
  async function grantAndResume(ctx: Context, interaction: Interaction): Promise<void> {
    const provider = deps.currentProvider();
    const accountId = interaction.session?.accountId;
    if (!accountId) throw new InteractionError(400, 'invalid_request', 'nobody is signed in for this request');
    const grant = interaction.grantId
      ? await provider.Grant.find(interaction.grantId)
      : new provider.Grant({ accountId, clientId: String(interaction.params.client_id) });
    if (!grant) throw new InteractionError(400, 'invalid_request', 'the grant of this request is gone');
    const missing = interaction.prompt.details as MissingGrant;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    resume(ctx, await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true }));
  }

  function consentAsks(missing: MissingGrant): ConsentItem[] {
    const asks: ConsentItem[] = (missing.missingOIDCScope ?? [])
      .filter((scope) => OIDC_SCOPE_WORDS[scope])
      .map((scope) => ({ text: OIDC_SCOPE_WORDS[scope], scopes: [scope] }));
    if (missing.missingOIDCClaims?.length) asks.push({ text: 'See these details about you', scopes: missing.missingOIDCClaims });
    // The provider lists only the scopes the person may grant: the entitlement policy has left out the others.
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      const rs = deps.resourceServers.byIdentifier(indicator);
      const details = scopes.map((scope) => ({ scope, description: rs?.scopeDescriptions[scope] }));
      asks.push({ text: `Use ${rs?.name ?? indicator} for you`, details });
    }
    return asks;
  }

  async function show(ctx: Context): Promise<void> {
    const interaction = await details(ctx);
    if (interaction.prompt.name === 'login') return (await steps.show(ctx, interaction)) ? undefined : showLogin(ctx, interaction, 200);
    if (interaction.prompt.name !== 'consent') throw new InteractionError(400, 'invalid_request', 'this step is not supported');

    const client = await deps.clients.getActive(String(interaction.params.client_id));
    if (!client) throw new InteractionError(400, 'invalid_client', 'the application is not registered or is disabled');
    // The company's own software acts for its people: they are not asked.
    if (client.trust === 'internal') return grantAndResume(ctx, interaction);

    const account = await deps.accounts.getActive(interaction.session?.accountId ?? '');
    if (!account) throw new InteractionError(400, 'access_denied', 'the account is not available');
    const uid = interactionPath(interaction.uid);
    const markup = consentPage({
      approveAction: `${uid}/confirm`,
      denyAction: `${uid}/abort`,
      clientName: client.clientName,
      accountEmail: account.email,
      asks: consentAsks(interaction.prompt.details),
    });
    sendPage(ctx, 200, markup, formTargets(interaction));
  }

  async function login(ctx: Context): Promise<void> {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login') throw new InteractionError(400, 'invalid_request', 'sign-in is not what this request waits for');
    const form = await readFormBody(ctx);
    const email = (form.get('email') ?? '').trim();
    const password = form.get('password') ?? '';
    const address = requestContext.getStore()?.ip ?? 'unknown';
    // An email no account can have (a NUL, undecodable UTF-8, too long) is not shown back in the form.
    const shownEmail = isPossibleEmail(email) ? email : undefined;

    // Counted as a failure before the password is hashed: parallel attempts cannot outrun the limit,
    // and refused ones cost no argon2 work. A store failure throws: refused (503), never let through.
    const retryAfter = await deps.limiter.begin(email, address);
    if (retryAfter > 0) {
      ctx.set('Retry-After', String(retryAfter));
      const minutes = Math.ceil(retryAfter / 60);
      return showLogin(ctx, interaction, 429, `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`, shownEmail);
    }

    // The same work whatever is wrong: an unknown email (or one no account can have) is checked
    // against a dummy hash, and a disabled account's password is checked before it is refused.
    const found = await selectAccountForSignIn(deps.db, email);
    const passwordMatches = await verifyPassword(found?.passwordHash, password);
    if (!found || !passwordMatches || found.account.disabled) {
      return showLogin(ctx, interaction, 400, SIGN_IN_FAILED, shownEmail);
    }
    await deps.limiter.succeeded(email, address);
    await steps.afterPassword(ctx, interaction, found.account.id);
  }

  async function confirm(ctx: Context): Promise<void> {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'consent') throw new InteractionError(400, 'invalid_request', 'consent is not what this request waits for');
    await grantAndResume(ctx, interaction);
  }

  async function abort(ctx: Context): Promise<void> {
    await details(ctx);
    const result = { error: 'access_denied', error_description: 'the person denied the request' };
    resume(ctx, await deps.currentProvider().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
  }

  /** Every failure becomes our error page; only expected errors show their description. */
  const guarded = (handler: (ctx: Context) => Promise<void>) => async (ctx: Context) => {
    try {
      await handler(ctx);
    } catch (error) {
      sendPageFailure(ctx, error, expectedFailureOf(error), deps.logger, 'interaction');
    }
  };

  for (const [path, type, body] of [
    [STYLESHEET_PATH, 'text/css', STYLESHEET],
    [ICON_PATH, 'image/svg+xml', ICON],
  ] as const) {
    router.get(path, (ctx) => {
      ctx.type = type;
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.body = body;
    });
  }
  router.get('/interaction/:uid', guarded(show));
  router.post('/interaction/:uid/login', guarded(login));
  router.post('/interaction/:uid/confirm', guarded(confirm));
  router.post('/interaction/:uid/abort', guarded(abort));
  steps.install(router, guarded);
  return router;
}
