/**
 * Security headers of every HTML page, ours and oidc-provider's: a strict Content-Security-Policy (no
 * script or style from anywhere but us, no framing), no MIME sniffing, no referrer, no caching.
 */
import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/** What a page needs beyond the strict default. */
export interface PageSecurity {
  /**
   * Where the page's forms may submit to, beyond this origin: the URLs a form submission ends up at
   * after its redirects (browsers apply `form-action` to the whole chain). Omitted: the page submits
   * nowhere (`form-action 'none'`).
   */
  readonly formTargets?: readonly string[];
  /** Inline scripts to allow, by content (only oidc-provider's auto-submitting pages have any). */
  readonly inlineScripts?: readonly string[];
}

interface HeaderTarget {
  set(name: string, value: string): void;
}

const origin = (url: string): string | undefined => {
  const parsed = URL.parse(url);
  return parsed && /^https?:$/.test(parsed.protocol) ? parsed.origin : undefined;
};

/** Sets the security headers of an HTML page. */
export function setPageHeaders(target: HeaderTarget, page: PageSecurity = {}): void {
  const formAction = page.formTargets === undefined ? "'none'" : ["'self'", ...new Set(page.formTargets.map(origin).filter((o) => o !== undefined))].join(' ');
  const scripts = (page.inlineScripts ?? []).map((script) => `'sha256-${createHash('sha256').update(script).digest('base64')}'`);
  const directives = [
    "default-src 'none'",
    ...(scripts.length > 0 ? [`script-src ${scripts.join(' ')}`] : []),
    "style-src 'self'",
    "img-src 'self'",
    `form-action ${formAction}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ];
  target.set('Content-Security-Policy', directives.join('; '));
  target.set('X-Content-Type-Options', 'nosniff');
  target.set('Referrer-Policy', 'no-referrer');
  target.set('X-Frame-Options', 'DENY');
  target.set('Cache-Control', 'no-store');
}

/** The redirect targets of the provider's request that the client has registered (others are ignored). */
function registeredTargets(ctx: KoaContextWithOIDC): string[] {
  const client = ctx.oidc?.client;
  const params = ctx.oidc?.params ?? {};
  if (!client) return [];
  const targets: string[] = [];
  if (typeof params.redirect_uri === 'string' && client.redirectUriAllowed(params.redirect_uri)) targets.push(params.redirect_uri);
  if (typeof params.post_logout_redirect_uri === 'string' && client.postLogoutRedirectUriAllowed(params.post_logout_redirect_uri)) {
    targets.push(params.post_logout_redirect_uri);
  }
  return targets;
}

/**
 * Gives the provider's HTML pages (its error page, logout pages and the auto-submitting form_post
 * pages, which carry an inline script) the same headers as ours. Their forms may submit to this
 * origin and to the redirect URIs the client registered for this request.
 */
export function installProviderPageHeaders(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    // The cheap test first: JSON answers (tokens, introspection) and empty ones (revocation) are not pages.
    if (typeof ctx.body !== 'string' || ctx.body === '' || !ctx.response.is('html')) return;
    const inlineScripts = [...ctx.body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((match) => match[1]);
    setPageHeaders(ctx, { formTargets: registeredTargets(ctx as KoaContextWithOIDC), inlineScripts });
  });
}
