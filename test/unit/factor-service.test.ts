/**
 * The factor services on a real PostgreSQL: TOTP enrolment and sign-in codes (a code is single-use,
 * the secret is sealed at rest), recovery codes (shown once, stored as digests, single-use), the
 * reset, and that every change is audited and ends the account's sessions.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { insertAccount } from '../../src/accounts/account-repository.js';
import { migrateToLatest, openDatabase, type Db } from '../../src/db/database.js';
import { MemoryChangeBus } from '../../src/events/change-bus.js';
import { FactorRejectedError } from '../../src/factors/factor.js';
import {
  confirmTotpEnrolment,
  listFactors,
  regenerateRecoveryCodes,
  resetFactors,
  startTotpEnrolment,
  verifyOneTimeCode,
  type FactorChangeContext,
} from '../../src/factors/factor-service.js';
import { totpCodeAt, TOTP_PERIOD_SECONDS } from '../../src/factors/totp.js';
import { keyEncryptionKeyFromBase64 } from '../../src/keys/key-encryption.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';

let database: ScratchDatabase;
let db: Db;
const revoked: string[] = [];
const kek = keyEncryptionKeyFromBase64(randomBytes(32).toString('base64'));

beforeAll(async () => {
  database = await createScratchDatabase('factors');
  db = await openDatabase(database.url, '');
  await migrateToLatest(db);
});

afterAll(async () => {
  await db?.destroy();
  await database?.drop();
});

const change = (): FactorChangeContext => ({
  db,
  bus: new MemoryChangeBus(),
  actor: 'test',
  sessions: { revokeAccount: async (id) => void revoked.push(id) },
  settings: { issuer: 'https://login.example', keyEncryptionKeys: [kek], serviceName: 'Company login' },
});

async function newAccount() {
  const id = randomUUID();
  await insertAccount(db, { id, email: `${id}@example.com`, name: 'Ann', passwordHash: 'x' });
  return { id, email: `${id}@example.com`, name: 'Ann' };
}

/** A code of the step after the current one: accepted (one step of drift) and not yet used. */
const codeOfNextStep = (secret: string) => totpCodeAt(secret, Date.now() + TOTP_PERIOD_SECONDS * 1000);

describe('TOTP', () => {
  it('enrols with a right code, seals the secret, gives ten recovery codes once, audits and ends sessions', async () => {
    const account = await newAccount();
    const enrolment = await startTotpEnrolment(change(), account);
    expect(enrolment.uri).toMatch(/^otpauth:\/\/totp\/.*secret=/);
    expect(enrolment.qrSvg).toMatch(/^<svg role="img"/);
    expect((await listFactors(db, account.id)).totp?.confirmedAt).toBeNull();

    await expect(confirmTotpEnrolment(change(), account.id, '000000')).rejects.toThrow(FactorRejectedError);
    const { recoveryCodes } = await confirmTotpEnrolment(change(), account.id, totpCodeAt(enrolment.secret, Date.now()));
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);

    const factors = await listFactors(db, account.id);
    expect(factors.totp?.confirmedAt).toBeInstanceOf(Date);
    expect(factors.recoveryCodes).toMatchObject({ remaining: 10, total: 10 });
    const row = await db.selectFrom('totp_factors').selectAll().where('account_id', '=', account.id).executeTakeFirstOrThrow();
    expect(row.sealed_secret).not.toContain(enrolment.secret);
    const stored = await db.selectFrom('recovery_codes').select('digest').where('account_id', '=', account.id).execute();
    expect(stored.map((r) => r.digest)).not.toContain(recoveryCodes![0]);
    const audit = await db.selectFrom('audit_events').select('action').where('target', '=', account.id).execute();
    expect(audit.map((a) => a.action)).toContain('account.factor.totp.add');
    expect(revoked).toContain(account.id);
  });

  it('accepts a sign-in code once, and no earlier code after it', async () => {
    const account = await newAccount();
    const { secret } = await startTotpEnrolment(change(), account);
    const now = Date.now();
    await confirmTotpEnrolment(change(), account.id, totpCodeAt(secret, now - TOTP_PERIOD_SECONDS * 1000));

    const next = codeOfNextStep(secret);
    await expect(verifyOneTimeCode(change(), account.id, next)).resolves.toMatchObject({ methods: ['otp'], kind: 'totp' });
    await expect(verifyOneTimeCode(change(), account.id, next)).rejects.toMatchObject({ reason: 'replayed_code' });
    await expect(verifyOneTimeCode(change(), account.id, totpCodeAt(secret, now))).rejects.toMatchObject({ reason: 'replayed_code' });
    await expect(verifyOneTimeCode(change(), account.id, '12345')).rejects.toMatchObject({ reason: 'wrong_code' });
  });

  it('refuses a second app while one is set up', async () => {
    const account = await newAccount();
    const { secret } = await startTotpEnrolment(change(), account);
    await confirmTotpEnrolment(change(), account.id, totpCodeAt(secret, Date.now()));
    await expect(startTotpEnrolment(change(), account)).rejects.toThrow(/already set up/);
  });
});

describe('recovery codes', () => {
  it('work once each, in any case and with or without dashes; a new set replaces the old', async () => {
    const account = await newAccount();
    const codes = await regenerateRecoveryCodes(change(), account.id);
    expect(codes[0]).toMatch(/^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/);
    await expect(verifyOneTimeCode(change(), account.id, codes[0].toUpperCase().replace(/-/g, ' '))).resolves.toMatchObject({ kind: 'recovery_code' });
    await expect(verifyOneTimeCode(change(), account.id, codes[0])).rejects.toMatchObject({ reason: 'wrong_code' });
    expect((await listFactors(db, account.id)).recoveryCodes).toMatchObject({ remaining: 9, total: 10 });

    const fresh = await regenerateRecoveryCodes(change(), account.id);
    await expect(verifyOneTimeCode(change(), account.id, codes[1])).rejects.toMatchObject({ reason: 'wrong_code' });
    await expect(verifyOneTimeCode(change(), account.id, fresh[1])).resolves.toMatchObject({ kind: 'recovery_code' });
  });
});

describe('reset', () => {
  it('removes every factor and is audited', async () => {
    const account = await newAccount();
    const { secret } = await startTotpEnrolment(change(), account);
    await confirmTotpEnrolment(change(), account.id, totpCodeAt(secret, Date.now()));
    await resetFactors(change(), account.id);
    expect(await listFactors(db, account.id)).toEqual({ totp: null, passkeys: [], recoveryCodes: null });
    const audit = await db.selectFrom('audit_events').select('action').where('target', '=', account.id).execute();
    expect(audit.map((a) => a.action)).toContain('account.factors.reset');
  });
});
