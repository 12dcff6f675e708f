/**
 * The real browser of the page tests: Debian's chromium (installed by .ci/run, never downloaded),
 * driven by playwright-core, and the virtual WebAuthn authenticator of its DevTools protocol, which
 * holds the passkeys the tests register and answers for them as a person's device would.
 */
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';

/** Starts Debian's chromium, headless, with the flags the developers' guide gives. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Gives `page`'s browser context a platform authenticator (CTAP2, resident keys, user verification,
 * presence given without a prompt); its DevTools session and the authenticator's id (to remove it).
 */
export async function addVirtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}
