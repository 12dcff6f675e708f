/**
 * Every migration, in order. Listed statically (not read from the folder at run time) so the same
 * list works from the TypeScript sources under test and from the compiled build.
 */
import type { Migration } from 'kysely';
import * as initial from './20261125T1400_initial.js';
import * as accounts from './20261126T1000_accounts.js';
import * as introspectionResponse from './20261130T0400_introspection_response.js';
import * as revocationEvents from './20261130T0710_revocation_events.js';
import * as groups from './20261130T0720_groups.js';
import * as signInFactors from './20261130T0730_sign_in_factors.js';
import * as auditFilters from './20261130T0810_audit_filters.js';

export const migrations: Record<string, Migration> = {
  '20261125T1400_initial': initial,
  '20261126T1000_accounts': accounts,
  '20261130T0400_introspection_response': introspectionResponse,
  '20261130T0710_revocation_events': revocationEvents,
  '20261130T0720_groups': groups,
  '20261130T0730_sign_in_factors': signInFactors,
  '20261130T0810_audit_filters': auditFilters,
};
