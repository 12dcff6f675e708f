/**
 * The second sign-in step (docs/strong-sign-in.md), between the password page and the provider: what
 * the person has proven so far is kept in the interaction (server side, bound to the browser by the
 * provider's interaction cookie), and the sign-in finishes only once it meets what the request, the
 * resource server and the account require. People who have a second factor always use it; people who
 * must have one and do not enrol an authenticator app (or a passkey) first. A session too weak for a
 * request steps up here with one more factor, no password again.
 *
 * Page handlers only: the factor logic is in src/factors/ (factor-service.ts).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountSessions } from '../accounts/account-service.js';
import type { Account } from '../accounts/account.js';
import type { AccountRegistry } from '../accounts/account-registry.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { FactorRejectedError, hasSecondFactor } from '../factors/factor.js';
import {
  confirmTotpEnrolment,
  finishPasskeyRegistration,
  listFactors,
  pendingTotpEnrolment,
  startPasskeyAuthentication,
  startPasskeyRegistration,
  startTotpEnrolment,
  verifyOneTimeCode,
  verifyPasskey,
  type FactorCheckContext,
  type FactorSettings,
  type ProvenFactor,
} from '../factors/factor-service.js';
import { acrForMethods, acrMeets, ACR_MFA, amrFor, type Amr } from '../issuer/authentication-policy.js';
import { requirementOf, STEP_UP_REASON, type StepUpDetails, type StrongSignInDependencies } from '../issuer/strong-sign-in.js';
import type { Logger } from '../observability/logger.js';
import { requestContext } from '../shared/request-context.js';
import { epochSeconds } from '../tokens/token-keys.js';
import type { TokenStore } from '../tokens/token-store.js';
import { readFormBody } from './form-body.js';
import {
  PASSKEY_SCRIPT,
  passkeyControls,
  passkeyResponseOf,
  recoveryCodesPage,
  secondFactorPage,
  totpEnrolmentPage,
  type PasskeyOffer,
} from './factor-pages.js';
import type { SignInLimiter } from './sign-in-limiter.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** What the person has proven in this interaction so far (kept in the interaction's `result`). */
interface SignInProgress {
  readonly accountId?: string;
  readonly methods: Amr[];
  /** The challenge of the passkey request the page in front of the person made; used once. */
  readonly passkeyChallenge?: string;
  /** The same for a passkey registration. */
  readonly registrationChallenge?: string;
  /** A factor was enrolled at this instant (epoch seconds): the account's earlier sign-ins ended then. */
  readonly changedAt?: number;
}

/** The key of the progress in the interaction's result (the provider keeps other keys of it as they are). */
const PROGRESS = 'strongSignIn';

/** What the steps work with (a subset of the interaction routes' dependencies). */
export interface FactorStepDependencies extends StrongSignInDependencies {
  readonly currentProvider: () => Provider;
  /** Where passkey challenges are marked answered, atomically (see FactorSteps#firstAnswer). */
  readonly tokenStore: TokenStore;
  readonly db: Db;
  readonly bus: ChangeBus;
  readonly accounts: AccountRegistry;
  readonly limiter: SignInLimiter;
  readonly logger: Logger;
  readonly factorSettings: FactorSettings;
  readonly sessions: AccountSessions;
}

/** The token store model of the sign-in's passkey challenges not answered yet (the provider never reads it). */
const PASSKEY_CHALLENGE_MODEL = 'SignInPasskeyChallenge';

/** What the steps need from the interaction routes: the page sender and the way back to the provider. */
export interface StepHelpers {
  readonly sendPage: (ctx: Context, status: number, markup: string, interaction: Interaction, inlineScripts?: readonly string[]) => void;
  readonly resume: (ctx: Context, returnTo: string) => void;
  readonly details: (ctx: Context) => Promise<Interaction>;
  readonly fail: (status: number, error: string, description: string) => Error;
}

const pathOf = (interaction: Interaction, step: string) => `/interaction/${interaction.uid}/${step}`;
const progressOf = (interaction: Interaction): SignInProgress | undefined => (interaction.result as Record<string, SignInProgress> | undefined)?.[PROGRESS];

const WRONG_CODE = 'That code is not right. Check the app and try again.';
const REUSED_CODE = 'That code was already used. Wait for the next one.';

/** The sign-in steps after the password: page renderers for `show`, and their POST routes. */
export class FactorSteps {
  constructor(
    private readonly deps: FactorStepDependencies,
    private readonly helpers: StepHelpers,
  ) {}

  /** What the factor services check with. */
  private get check(): FactorCheckContext {
    return { db: this.deps.db, settings: this.deps.factorSettings };
  }

  /**
   * Records a passkey challenge as unanswered, for as long as its interaction lives. The interaction
   * holds the challenge too, but two answers posted at once both read it before either saves it away:
   * the token store's atomic take decides which one is the first (`firstAnswer`).
   */
  private async issued(interaction: Interaction, challenge: string): Promise<void> {
    await this.deps.tokenStore.adapter(PASSKEY_CHALLENGE_MODEL).upsert(challenge, {}, Math.max(1, (interaction.exp ?? 0) - epochSeconds()));
  }

  /** Whether this is the first answer to `challenge` (issued here, not answered yet); it is marked answered. */
  private async firstAnswer(challenge: string | undefined): Promise<boolean> {
    return challenge !== undefined && (await this.deps.tokenStore.take(PASSKEY_CHALLENGE_MODEL, challenge)) !== undefined;
  }

  private async save(interaction: Interaction, progress: SignInProgress): Promise<void> {
    interaction.result = { ...interaction.result, [PROGRESS]: progress };
    // A factor change ended the account's sessions, this interaction's too (when stepping up): the
    // interaction no longer refers to it (the provider would refuse it as gone), and the sign-in it
    // finishes starts a new one.
    if (progress.changedAt !== undefined) interaction.session = undefined;
    await interaction.save(Math.max(1, (interaction.exp ?? 0) - epochSeconds()));
  }

  /**
   * The passkey sign-in offered on the password page (a passkey alone, discoverable credentials and
   * conditional UI). Its challenge is kept in the interaction.
   */
  async passkeyOnLoginPage(interaction: Interaction): Promise<ReturnType<typeof passkeyControls>> {
    const { options, challenge } = await startPasskeyAuthentication(this.check);
    await this.issued(interaction, challenge);
    await this.save(interaction, { ...(progressOf(interaction) ?? { methods: [] }), passkeyChallenge: challenge });
    return passkeyControls({ action: pathOf(interaction, 'passkey'), mode: 'conditional', options, label: 'Use a passkey' });
  }

  /**
   * What `show` displays for a login prompt when a step is under way or the session only needs to
   * step up; `false` when it is the password page's turn.
   */
  async show(ctx: Context, interaction: Interaction): Promise<boolean> {
    let progress = progressOf(interaction);
    if (!progress?.accountId) {
      const sessionAccount = interaction.session?.accountId;
      const stepUp = interaction.prompt.reasons.includes(STEP_UP_REASON) && (interaction.prompt.details as Partial<StepUpDetails>).shortfall === 'step_up';
      // Only a session too weak (not one too old, or another check of the prompt) skips the password.
      if (!sessionAccount || !stepUp || interaction.prompt.reasons.some((reason) => reason !== STEP_UP_REASON && reason !== 'login_prompt')) return false;
      const methods = ((interaction.session?.amr as Amr[] | undefined) ?? ['pwd']).filter((m) => m !== 'mfa');
      progress = { accountId: sessionAccount, methods };
      await this.save(interaction, progress);
    }
    await this.showStep(ctx, interaction, progress, 200);
    return true;
  }

  private async account(progress: SignInProgress): Promise<Account> {
    const account = progress.accountId === undefined ? undefined : await this.deps.accounts.getActive(progress.accountId);
    if (!account) throw this.helpers.fail(400, 'access_denied', 'the account is not available');
    return account;
  }

  /** The page of the next step: the second factor, or the enrolment when the account has none. */
  private async showStep(ctx: Context, interaction: Interaction, progress: SignInProgress, status: number, alert?: string): Promise<void> {
    const account = await this.account(progress);
    const factors = await listFactors(this.deps.db, account.id);
    if (hasSecondFactor(factors)) {
      let passkey: PasskeyOffer | undefined;
      let next = progress;
      if (factors.passkeys.length > 0) {
        const { options, challenge } = await startPasskeyAuthentication(this.check, account.id);
        await this.issued(interaction, challenge);
        passkey = { action: pathOf(interaction, 'passkey'), mode: 'get', options, label: 'Use a passkey' };
        next = { ...progress, passkeyChallenge: challenge };
      }
      await this.save(interaction, next);
      const markup = secondFactorPage({
        action: pathOf(interaction, 'code'),
        accountEmail: account.email,
        hasTotp: factors.totp?.confirmedAt != null,
        passkey,
        alert,
      });
      return this.helpers.sendPage(ctx, status, markup, interaction, passkey ? [PASSKEY_SCRIPT] : undefined);
    }
    const enrolment = (await pendingTotpEnrolment(this.check, account)) ?? (await startTotpEnrolment(this.check, account));
    const registration = await startPasskeyRegistration(this.check, account);
    await this.issued(interaction, registration.challenge);
    await this.save(interaction, { ...progress, registrationChallenge: registration.challenge });
    const markup = totpEnrolmentPage({
      action: pathOf(interaction, 'enrol'),
      accountEmail: account.email,
      ...enrolment,
      passkey: { action: pathOf(interaction, 'passkey-enrol'), mode: 'create', options: registration.options, label: 'Use a passkey instead' },
      alert,
    });
    this.helpers.sendPage(ctx, status, markup, interaction, [PASSKEY_SCRIPT]);
  }

  /**
   * After a right password: finishes the sign-in when that is enough, else saves the progress and
   * shows the next step.
   */
  async afterPassword(ctx: Context, interaction: Interaction, accountId: string): Promise<void> {
    await this.advance(ctx, interaction, { accountId, methods: ['pwd'] });
  }

  /** Finishes the sign-in if what is proven meets every requirement, else shows the next step. */
  private async advance(ctx: Context, interaction: Interaction, progress: SignInProgress): Promise<void> {
    const account = await this.account(progress);
    const methods = amrFor(progress.methods);
    const acr = acrForMethods(methods);
    const requirement = await requirementOf(this.deps, interaction.params, account.id);
    const factors = await listFactors(this.deps.db, account.id);
    const enough = (!hasSecondFactor(factors) || acr === ACR_MFA) && (requirement.acr === undefined || acrMeets(acr, requirement.acr));
    if (!enough) {
      await this.save(interaction, { accountId: account.id, methods: progress.methods, ...(progress.changedAt ? { changedAt: progress.changedAt } : {}) });
      return this.showStep(ctx, interaction, { ...progress, accountId: account.id }, 200);
    }
    // A change that ended the account's sessions and tokens in this second (a factor enrolled in this
    // sign-in, or a new password or factor from the account page a moment ago) ended this second's
    // grants too: tokensRevokedAt is in whole seconds. This sign-in starts in the next one.
    const revokedAt = Math.max(progress.changedAt ?? 0, account.tokensRevokedAt ?? 0);
    if (epochSeconds() <= revokedAt) {
      await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    }
    const result = { login: { accountId: account.id, amr: methods, acr, remember: true } };
    this.helpers.resume(ctx, await this.deps.currentProvider().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
  }

  /** The progress of a step that needs a known account, or a clear refusal. */
  private need(interaction: Interaction): SignInProgress & { accountId: string } {
    const progress = progressOf(interaction);
    if (!progress?.accountId || interaction.prompt.name !== 'login') {
      throw this.helpers.fail(400, 'invalid_request', 'this sign-in step is not what this request waits for');
    }
    return progress as SignInProgress & { accountId: string };
  }

  private logRefusal(error: FactorRejectedError, accountId: string | undefined, factor: string): void {
    // Never the code or the passkey answer: the reason and whom it concerned.
    this.deps.logger.warn({ reason: error.reason, accountId, factor }, 'second factor refused');
  }

  /** Counts a factor attempt first (like a password), or answers the wait; `true` when it may be checked. */
  private async admitted(ctx: Context, interaction: Interaction, progress: SignInProgress, key: string): Promise<boolean> {
    const address = requestContext.getStore()?.ip ?? 'unknown';
    const wait = await this.deps.limiter.begin(key, address);
    if (wait === 0) return true;
    ctx.set('Retry-After', String(wait));
    const minutes = Math.ceil(wait / 60);
    await this.showStep(ctx, interaction, progress, 429, `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`);
    return false;
  }

  private async code(ctx: Context): Promise<void> {
    const interaction = await this.helpers.details(ctx);
    const progress = this.need(interaction);
    const code = (await readFormBody(ctx)).get('code') ?? '';
    const key = `factor:${progress.accountId}`;
    if (!(await this.admitted(ctx, interaction, progress, key))) return;
    let proven: ProvenFactor;
    try {
      proven = await verifyOneTimeCode(this.check, progress.accountId, code);
    } catch (error) {
      if (!(error instanceof FactorRejectedError)) throw error;
      this.logRefusal(error, progress.accountId, 'code');
      return this.showStep(ctx, interaction, progress, 400, error.reason === 'replayed_code' ? REUSED_CODE : WRONG_CODE);
    }
    await this.deps.limiter.succeeded(key, requestContext.getStore()?.ip ?? 'unknown');
    if (proven.kind === 'recovery_code') this.deps.logger.info({ accountId: progress.accountId }, 'signed in with a recovery code');
    await this.advance(ctx, interaction, { ...progress, methods: [...progress.methods, ...proven.methods] });
  }

  private async passkey(ctx: Context): Promise<void> {
    const interaction = await this.helpers.details(ctx);
    if (interaction.prompt.name !== 'login') throw this.helpers.fail(400, 'invalid_request', 'sign-in is not what this request waits for');
    const progress = progressOf(interaction) ?? { methods: [] };
    const challenge = progress.passkeyChallenge;
    // Single use, whatever comes of it: forgotten before the answer is checked.
    const { passkeyChallenge: _used, ...rest } = progress;
    await this.save(interaction, rest);
    const firstAnswer = await this.firstAnswer(challenge);
    const response = passkeyResponseOf((await readFormBody(ctx)).get('response'));
    const key = `passkey:${progress.accountId ?? (typeof response?.id === 'string' ? response.id : '')}`;
    if (!(await this.admittedOnAnyPage(ctx, interaction, rest, key))) return;
    let proven: ProvenFactor;
    try {
      if (!challenge || !firstAnswer || !response) throw new FactorRejectedError('wrong_challenge', 'this passkey request is no longer valid; try again');
      proven = await verifyPasskey(this.check, challenge, response as never, progress.accountId);
    } catch (error) {
      if (!(error instanceof FactorRejectedError)) throw error;
      this.logRefusal(error, progress.accountId, 'passkey');
      return this.refusedOnAnyPage(ctx, interaction, rest, `The passkey was refused: ${error.message}.`);
    }
    await this.deps.limiter.succeeded(key, requestContext.getStore()?.ip ?? 'unknown');
    // A passkey alone signs in; after a password it is the second factor.
    await this.advance(ctx, interaction, { ...rest, accountId: proven.accountId, methods: [...rest.methods, ...proven.methods] });
  }

  private async admittedOnAnyPage(ctx: Context, interaction: Interaction, progress: SignInProgress, key: string): Promise<boolean> {
    if (progress.accountId) return this.admitted(ctx, interaction, progress, key);
    const address = requestContext.getStore()?.ip ?? 'unknown';
    const wait = await this.deps.limiter.begin(key, address);
    if (wait === 0) return true;
    ctx.set('Retry-After', String(wait));
    throw this.helpers.fail(429, 'access_denied', 'too many failed attempts; try again later');
  }

  /** A refused passkey: the page it came from again (the step's, or the password page's error page). */
  private async refusedOnAnyPage(ctx: Context, interaction: Interaction, progress: SignInProgress, alert: string): Promise<void> {
    if (progress.accountId) return this.showStep(ctx, interaction, progress, 400, alert);
    throw this.helpers.fail(400, 'access_denied', alert);
  }

  private async enrol(ctx: Context): Promise<void> {
    const interaction = await this.helpers.details(ctx);
    const progress = this.need(interaction);
    const code = (await readFormBody(ctx)).get('code') ?? '';
    let recoveryCodes: string[] | undefined;
    try {
      ({ recoveryCodes } = await confirmTotpEnrolment(this.changeContext(progress.accountId), progress.accountId, code));
    } catch (error) {
      if (!(error instanceof FactorRejectedError)) throw error;
      this.logRefusal(error, progress.accountId, 'totp enrolment');
      return this.showStep(ctx, interaction, progress, 400, WRONG_CODE);
    }
    const next: SignInProgress = { accountId: progress.accountId, methods: [...progress.methods, 'otp'], changedAt: epochSeconds() };
    await this.save(interaction, next);
    if (!recoveryCodes) return this.advance(ctx, interaction, next);
    this.helpers.sendPage(ctx, 200, recoveryCodesPage({ codes: recoveryCodes, continueAction: pathOf(interaction, 'continue') }), interaction);
  }

  private async passkeyEnrol(ctx: Context): Promise<void> {
    const interaction = await this.helpers.details(ctx);
    const progress = this.need(interaction);
    const { registrationChallenge: challenge, ...rest } = progress;
    await this.save(interaction, rest);
    const firstAnswer = await this.firstAnswer(challenge);
    const response = passkeyResponseOf((await readFormBody(ctx)).get('response'));
    let proven: Amr[];
    try {
      if (!challenge || !firstAnswer || !response) throw new FactorRejectedError('wrong_challenge', 'this passkey request is no longer valid; try again');
      const passkey = await finishPasskeyRegistration(this.changeContext(progress.accountId), progress.accountId, challenge, response as never);
      proven = [passkey.deviceType === 'multiDevice' ? 'swk' : 'hwk', 'user'];
    } catch (error) {
      if (!(error instanceof FactorRejectedError)) throw error;
      this.logRefusal(error, progress.accountId, 'passkey registration');
      return this.showStep(ctx, interaction, rest, 400, `The passkey was refused: ${error.message}.`);
    }
    const next: SignInProgress = { accountId: progress.accountId, methods: [...progress.methods, ...proven], changedAt: epochSeconds() };
    await this.save(interaction, next);
    await this.advance(ctx, interaction, next);
  }

  private async continueAfterCodes(ctx: Context): Promise<void> {
    const interaction = await this.helpers.details(ctx);
    await this.advance(ctx, interaction, this.need(interaction));
  }

  private changeContext(accountId: string) {
    // The person changes their own account: the audit names them.
    return { db: this.deps.db, bus: this.deps.bus, sessions: this.deps.sessions, settings: this.deps.factorSettings, actor: `account:${accountId}` };
  }

  /** Adds the POST routes of the steps, each wrapped by `guarded` (the interaction routes' error pages). */
  install(router: Router, guarded: (handler: (ctx: Context) => Promise<void>) => (ctx: Context) => Promise<void>): void {
    router.post(
      '/interaction/:uid/code',
      guarded((ctx) => this.code(ctx)),
    );
    router.post(
      '/interaction/:uid/passkey',
      guarded((ctx) => this.passkey(ctx)),
    );
    router.post(
      '/interaction/:uid/enrol',
      guarded((ctx) => this.enrol(ctx)),
    );
    router.post(
      '/interaction/:uid/passkey-enrol',
      guarded((ctx) => this.passkeyEnrol(ctx)),
    );
    router.post(
      '/interaction/:uid/continue',
      guarded((ctx) => this.continueAfterCodes(ctx)),
    );
  }
}
