/**
 * The client of the 2FA REST API: the gate's (`{baseUrl}2fa/api/`, session cookie + XSRF header) or, under
 * JupyterHub, the hub's (`{hubPrefix}2fa/api/`, HTTP Basic with the user's password, never a token).
 *
 * Every failure becomes a `TwoFactorError` with a `kind` the panel and the session monitor act on. A 403
 * means several things (wrong password or code, lockout, policy, no session), so the client asks
 * `GET status` once more to tell them apart: if that is refused too, the session is gone.
 */

import type { CreationOptionsJSON, RegistrationResponseJSON } from './webauthn';

/** The account's state and this session's (`GET status`). The hub has no session fields. */
export interface Status {
  username: string;
  enrolled: boolean;
  pending: boolean;
  recovery_codes_left: number;
  locked: boolean;
  policy: 'required' | 'optional' | 'cli-only';
  optional_until: string | null;
  /** How many passkeys and security keys the account has. */
  webauthn_keys: number;
  /** Whether this server lets keys be registered and used (`TwoFactorConfig.factors`). */
  webauthn_enabled?: boolean;
  session_factor?: string | null;
  /** Unix time (seconds) at which this session ends at the latest. */
  session_expires_at?: number | null;
}

/** The one-time answer to starting an enrollment or a re-link. Never log, store or put in a URL. */
export interface Provisioning {
  otpauth_uri: string;
  secret: string;
  manual_key: string;
  qr_svg: string;
  /** Unix time (seconds) after which the pending enrollment can no longer be confirmed. */
  expires_at: number | null;
}

/** One passkey or security key of the account (`GET webauthn/credentials`). */
export interface WebAuthnCredential {
  /** The credential id, base64url. */
  id: string;
  name: string;
  /** Unix time (seconds); an ISO 8601 string is read too. */
  created_at: number | string;
  last_used_at: number | string | null;
  transports: string[];
  aaguid: string;
}

/** The answer to adding a key: `recovery_codes` is non-empty only when it is the account's first factor. */
export interface AddedCredential {
  credential: WebAuthnCredential;
  recovery_codes: string[];
}

export type ErrorKind =
  | 'rejected' // 403: wrong password or code (one answer for both), or a policy refusal
  | 'locked' // 403 and the account is now locked: the message carries the site's help text
  | 'throttled' // 429: wait `retryAfter` seconds
  | 'conflict' // 409/404: not in the state the call needs (nothing pending, it expired, already linked)
  | 'invalid' // 400/413: malformed input
  | 'unavailable' // 503: the 2FA store is down
  | 'session' // the session expired or was revoked
  | 'network' // no answer, or not the API's JSON
  | 'browser'; // the browser's WebAuthn prompt was cancelled, timed out or refused

export class TwoFactorError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly status = 0,
    readonly retryAfter: number | null = null
  ) {
    super(message);
    this.name = 'TwoFactorError';
  }
}

/** `fetch`'s shape: `ServerConnection.makeRequest` bound to the server settings, or `window.fetch`. */
export type Transport = (url: string, init: RequestInit) => Promise<Response>;

export interface ApiOptions {
  /** Where `status`, `enrollment`, ... live, ending in `/`: `{baseUrl}2fa/api/` or `{hubPrefix}2fa/api/`. */
  apiUrl: string;
  transport: Transport;
  /** Hub mode: changes need the user's name and password (HTTP Basic) instead of the session cookie. */
  hubUser?: string;
}

/** What a change needs: the password always; a code for re-link and new recovery codes. */
export interface Credentials {
  password: string;
  otp?: string;
}

const MESSAGES: Record<ErrorKind, string> = {
  rejected: 'Wrong password or code.',
  locked: 'Too many failed attempts: the account is locked. Contact your administrator.',
  throttled: 'Too many failed attempts. Wait a moment and try again.',
  conflict: 'The account is not in the state this needs. Reload the panel.',
  invalid: 'The server did not accept that input.',
  unavailable: 'The two-factor service is unavailable right now. Try again later.',
  session: 'Your session has ended.',
  network: 'The server could not be reached. Check your connection and try again.',
  browser: 'The browser could not create a key. Try again.'
};

function kindOf(status: number): ErrorKind {
  if (status === 403 || status === 401) {
    return 'rejected';
  }
  if (status === 429) {
    return 'throttled';
  }
  if (status === 409 || status === 404) {
    return 'conflict';
  }
  if (status === 503) {
    return 'unavailable';
  }
  return status >= 400 && status < 500 ? 'invalid' : 'network';
}

function basic(user: string, password: string): string {
  // btoa takes Latin-1 only; the hub decodes Basic credentials as UTF-8.
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

export class TwoFactorApi {
  constructor(private readonly options: ApiOptions) {}

  get hubMode(): boolean {
    return this.options.hubUser !== undefined;
  }

  status(): Promise<Status> {
    return this.call<Status>('GET', 'status');
  }

  beginEnrollment(credentials: Credentials): Promise<Provisioning> {
    return this.call('POST', 'enrollment', { password: credentials.password }, credentials);
  }

  beginRelink(credentials: Credentials): Promise<Provisioning> {
    return this.call('POST', 'relink', { password: credentials.password, otp: credentials.otp ?? '' }, credentials);
  }

  /** Confirms the pending device; in hub mode the password is asked again (the client keeps none). */
  async confirm(code: string, credentials?: Credentials): Promise<string[]> {
    const body = await this.call<{ recovery_codes: string[] }>('POST', 'enrollment/confirm', { code }, credentials);
    return body.recovery_codes;
  }

  async cancelEnrollment(credentials?: Credentials): Promise<void> {
    await this.call('DELETE', 'enrollment', undefined, credentials);
  }

  async regenerateRecoveryCodes(credentials: Credentials): Promise<string[]> {
    const body = await this.call<{ recovery_codes: string[] }>(
      'POST',
      'recovery-codes',
      { password: credentials.password, otp: credentials.otp ?? '' },
      credentials
    );
    return body.recovery_codes;
  }

  async webauthnCredentials(): Promise<WebAuthnCredential[]> {
    const body = await this.call<{ credentials: WebAuthnCredential[] }>('GET', 'webauthn/credentials');
    return body.credentials;
  }

  /** Starts adding a key: the password, and a code when a factor is linked. Sets the ceremony cookie. */
  async webauthnRegistrationOptions(credentials: Credentials): Promise<CreationOptionsJSON> {
    const body = await this.call<{ options: CreationOptionsJSON }>(
      'POST',
      'webauthn/registration-options',
      { password: credentials.password, otp: credentials.otp ?? '' },
      credentials
    );
    return body.options;
  }

  async addWebAuthnCredential(
    name: string,
    credential: RegistrationResponseJSON,
    credentials?: Credentials
  ): Promise<AddedCredential> {
    const body = await this.call<Partial<AddedCredential>>(
      'POST',
      'webauthn/credentials',
      { name, credential },
      credentials
    );
    return { credential: body.credential as WebAuthnCredential, recovery_codes: body.recovery_codes ?? [] };
  }

  /** In hub mode the password is asked too (HTTP Basic); the gate's session cookie is enough there. */
  async renameWebAuthnCredential(id: string, name: string, credentials?: Credentials): Promise<WebAuthnCredential> {
    const body = await this.call<{ credential: WebAuthnCredential }>(
      'PATCH',
      `webauthn/credentials/${encodeURIComponent(id)}`,
      { name },
      credentials
    );
    return body.credential;
  }

  /**
   * Removing a key takes the password and the current factor (a code or recovery code; none from a session
   * opened with a key). A 409 (the account's last factor) keeps the server's message, which says what to do.
   */
  async removeWebAuthnCredential(id: string, credentials: Credentials): Promise<void> {
    await this.call(
      'DELETE',
      `webauthn/credentials/${encodeURIComponent(id)}`,
      { password: credentials.password, otp: credentials.otp ?? '' },
      credentials
    );
  }

  private async call<T>(
    method: string,
    path: string,
    body?: Record<string, unknown>,
    credentials?: Credentials
  ): Promise<T> {
    const response = await this.send(method, path, body, credentials);
    if (response.ok) {
      return (response.status === 204 ? undefined : await this.json(response)) as T;
    }
    throw await this.failure(response, path === 'status');
  }

  private async send(
    method: string,
    path: string,
    body: Record<string, unknown> | undefined,
    credentials: Credentials | undefined
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    const init: RequestInit = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (this.hubMode) {
      if (credentials) {
        headers['Authorization'] = basic(this.options.hubUser ?? '', credentials.password);
        // Basic alone: a hub cookie beside it would make the hub demand its own XSRF token.
        init.credentials = 'omit';
      } else {
        init.credentials = 'same-origin';
      }
    }
    try {
      return await this.options.transport(this.options.apiUrl + path, init);
    } catch {
      throw new TwoFactorError('network', MESSAGES.network);
    }
  }

  private async json(response: Response): Promise<unknown> {
    try {
      return await response.json();
    } catch {
      throw new TwoFactorError('network', MESSAGES.network, response.status);
    }
  }

  private async failure(response: Response, isStatus: boolean): Promise<TwoFactorError> {
    const status = response.status;
    let message = '';
    try {
      const body = (await response.json()) as { message?: unknown };
      message = typeof body.message === 'string' ? body.message : '';
    } catch {
      // not JSON (a proxy's error page): the generic message below says enough
    }
    const header = Number(response.headers.get('Retry-After'));
    const retryAfter = Number.isFinite(header) && header > 0 ? header : null;
    let kind = kindOf(status);
    if (kind === 'rejected') {
      kind = await this.whyRefused(isStatus);
    }
    if (kind === 'session') {
      message = MESSAGES.session;
    }
    return new TwoFactorError(kind, message || MESSAGES[kind], status, retryAfter);
  }

  /** A 403 on `status` itself means no session; on a change, `status` tells a lockout from a wrong answer. */
  private async whyRefused(isStatus: boolean): Promise<ErrorKind> {
    if (isStatus) {
      return this.hubMode ? 'rejected' : 'session';
    }
    let response: Response;
    try {
      response = await this.send('GET', 'status', undefined, undefined);
    } catch {
      return 'rejected';
    }
    if (response.status === 403 && !this.hubMode) {
      return 'session';
    }
    if (!response.ok) {
      return 'rejected';
    }
    try {
      return ((await response.json()) as Status).locked ? 'locked' : 'rejected';
    } catch {
      return 'rejected';
    }
  }
}
