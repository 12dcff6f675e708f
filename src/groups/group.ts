/** Groups of accounts and entitlements, as the rest of the server sees them: never database rows. */

/** A named set of accounts. A group may sit under one parent group, whose members' entitlements its members share. */
export interface Group {
  readonly id: string;
  readonly name: string;
  /** The parent group; a parent has none (one level of nesting). */
  readonly parentId: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Who an entitlement is for: the members of a group (and of its subgroups), or one account. */
export type EntitlementSubject = { readonly groupId: string; readonly accountId: null } | { readonly groupId: null; readonly accountId: string };

/** Which scopes (and roles) of one resource server a group or an account may receive. */
export type Entitlement = EntitlementSubject & {
  readonly id: string;
  readonly resourceServerId: string;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
};

/** One member of a group, as listed. */
export interface GroupMember {
  readonly accountId: string;
  readonly email: string;
  readonly name: string;
  readonly addedAt: Date;
}

/** The outcome for one account of a bulk membership change. */
export type MembershipOutcome = 'added' | 'already_member' | 'removed' | 'not_member' | 'unknown_account';

/** The scopes of the admin audience a person administrator is entitled to. */
export const ADMIN_WRITE_SCOPE = 'admin:write';
