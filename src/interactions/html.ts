/**
 * Server-rendered HTML with escaping by default: every value interpolated into an `html` template is
 * escaped unless it is itself the output of `html`, so no page can forget to escape.
 */

/** Markup that is already safe to send (built by {@link html}). */
export class SafeHtml {
  constructor(readonly markup: string) {}

  toString(): string {
    return this.markup;
  }
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  if (typeof value === 'string') return escapeHtml(value);
  if (typeof value === 'number') return escapeHtml(String(value));
  // An object would print as "[object Object]": a page built wrong should fail, not show that.
  throw new TypeError(`a page cannot show a value of type ${typeof value}`);
}

/** Tagged template: `html\`<p>${text}</p>\`` escapes `text`; nested `html` and arrays of it are kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let markup = strings[0];
  values.forEach((value, index) => {
    markup += render(value) + strings[index + 1];
  });
  return new SafeHtml(markup);
}

/**
 * Provider-generated markup that is trusted as is: oidc-provider's logout form (a form element with
 * a hidden anti-forgery field, built by the provider with its own escaping).
 */
export function trustedProviderMarkup(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
