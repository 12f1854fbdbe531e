/**
 * What the user is told when the session ends, and where they are sent: the login page with `next` set to
 * where they were. Pure functions (the dialog itself is in index.ts), so Jest checks the wording and the URL.
 */

/** `{loginBase}login?next=<where the user is>`; the server only follows `next` within its own base URL. */
export function loginUrl(loginBase: string, location: Pick<Location, 'pathname' | 'search'>): string {
  const base = loginBase.endsWith('/') ? loginBase : `${loginBase}/`;
  return `${base}login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

export function expiryMessage(unsaved: string[]): string {
  const ended = 'Your session has ended: it expired, or you logged out or re-linked your device elsewhere.';
  if (unsaved.length === 0) {
    return `${ended} Log in again to continue where you were.`;
  }
  return (
    `${ended} These documents have unsaved changes: ${unsaved.join(', ')}. They cannot be saved until you ` +
    'log in again. Choose "Log in in a new tab", then come back to this tab and save them (File → Save). ' +
    '"Log in here" leaves this page, and their unsaved changes are lost.'
  );
}
