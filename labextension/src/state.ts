/**
 * The panel's state machine: a pure reducer (`reduce`) and the controller that runs API calls and feeds it.
 * No DOM here, so Jest drives every path without a browser.
 *
 * Secrets (the provisioning's QR code, key and otpauth URI) and recovery codes live only in the `confirm` and
 * `codes` steps. Every transition out of those steps builds a new state without them, so once the step is
 * done, fails for good, or the panel closes, nothing in the panel references them any more.
 *
 * Passkeys and security keys (WebAuthn): the list comes with every refresh; adding one runs the server's
 * options through the browser's prompt (an injected `Authenticator`, see webauthn.ts) and back to the server.
 */

import { Credentials, ErrorKind, Provisioning, Status, TwoFactorApi, TwoFactorError, WebAuthnCredential } from './api';
import { BrowserScope, PasskeySupport, passkeySupport } from './webauthn';

export type Purpose = 'enroll' | 'relink' | 'recovery';

export type Step =
  | { name: 'loading' }
  | { name: 'overview' }
  /** The password (and for re-link and new recovery codes, a current or recovery code). */
  | { name: 'credentials'; purpose: Purpose }
  /** Scan and confirm. `provisioning` is null for an enrollment left pending earlier (shown only once). */
  | { name: 'confirm'; provisioning: Provisioning | null }
  /** New recovery codes, shown once. */
  | { name: 'codes'; codes: string[] }
  /** A key's name, the password (and a code): then the browser's prompt (`waiting`) until it answers. */
  | { name: 'key-add'; waiting: boolean }
  | { name: 'key-rename'; key: WebAuthnCredential }
  /** The password, to remove the key. */
  | { name: 'key-remove'; key: WebAuthnCredential }
  /** The session expired or was revoked: nothing more to do here. */
  | { name: 'ended' };

export interface Problem {
  kind: ErrorKind;
  message: string;
  retryAfter: number | null;
}

export interface PanelState {
  status: Status | null;
  /** The account's passkeys and security keys; null until the first list arrives. */
  keys: WebAuthnCredential[] | null;
  step: Step;
  busy: boolean;
  error: Problem | null;
  notice: string | null;
}

export type Event =
  | { type: 'busy' }
  | { type: 'status'; status: Status }
  | { type: 'keys'; keys: WebAuthnCredential[] }
  | { type: 'open'; purpose: Purpose }
  | { type: 'finish-pending' }
  | { type: 'back' }
  | { type: 'provisioned'; provisioning: Provisioning }
  | { type: 'codes'; codes: string[]; notice: string }
  | { type: 'cancelled' }
  | { type: 'add-key' }
  | { type: 'edit-key'; action: 'rename' | 'remove'; key: WebAuthnCredential }
  /** The server's options are in the browser: its prompt is open. */
  | { type: 'prompt' }
  /** A change is made and needs no step of its own: back to the overview with `notice`. */
  | { type: 'done'; notice: string }
  | { type: 'failed'; error: Problem }
  | { type: 'closed' };

export const INITIAL: PanelState = {
  status: null,
  keys: null,
  step: { name: 'loading' },
  busy: false,
  error: null,
  notice: null
};

/** Failures after which the current step cannot go on: its secret is dropped and the panel starts over. */
const FINAL: ReadonlySet<ErrorKind> = new Set<ErrorKind>(['locked', 'conflict']);

export function reduce(state: PanelState, event: Event): PanelState {
  switch (event.type) {
    case 'busy':
      return { ...state, busy: true, error: null, notice: null };
    case 'status':
      // A refresh never leaves a step the user is in; it only replaces the first "loading".
      return {
        ...state,
        status: event.status,
        busy: false,
        step: state.step.name === 'loading' ? { name: 'overview' } : state.step
      };
    case 'keys':
      return { ...state, keys: event.keys };
    case 'open':
      return { ...state, step: { name: 'credentials', purpose: event.purpose }, error: null, notice: null };
    case 'finish-pending':
      return { ...state, step: { name: 'confirm', provisioning: null }, error: null, notice: null };
    case 'back':
      return { ...state, step: { name: 'overview' }, busy: false, error: null, notice: null };
    case 'provisioned':
      return { ...state, step: { name: 'confirm', provisioning: event.provisioning }, busy: false, error: null };
    case 'codes':
      return { ...state, step: { name: 'codes', codes: event.codes }, busy: false, error: null, notice: event.notice };
    case 'cancelled':
      return {
        ...state,
        step: { name: 'overview' },
        busy: false,
        error: null,
        notice: 'The pending enrollment was cancelled. Nothing was linked.'
      };
    case 'add-key':
      return { ...state, step: { name: 'key-add', waiting: false }, error: null, notice: null };
    case 'edit-key': {
      const step: Step = { name: event.action === 'rename' ? 'key-rename' : 'key-remove', key: event.key };
      return { ...state, step, error: null, notice: null };
    }
    case 'prompt':
      return state.step.name === 'key-add' ? { ...state, step: { name: 'key-add', waiting: true } } : state;
    case 'done':
      return { ...state, step: { name: 'overview' }, busy: false, error: null, notice: event.notice };
    case 'failed': {
      const { kind } = event.error;
      if (kind === 'session') {
        return { ...state, step: { name: 'ended' }, busy: false, error: event.error, notice: null };
      }
      const kept: Step = state.step.name === 'key-add' ? { name: 'key-add', waiting: false } : state.step;
      const step: Step = FINAL.has(kind) ? { name: 'overview' } : kept;
      return { ...state, step, busy: false, error: event.error, notice: null };
    }
    case 'closed':
      return INITIAL;
  }
}

function problem(err: unknown): Problem {
  if (err instanceof TwoFactorError) {
    return { kind: err.kind, message: err.message, retryAfter: err.retryAfter };
  }
  return { kind: 'network', message: 'Something went wrong. Try again.', retryAfter: null };
}

/**
 * Under JupyterHub the API's changes carry HTTP Basic and no cookies (a hub cookie would make the hub ask for
 * its XSRF token, which this page cannot read): the ceremony cookie of `registration-options` would never come
 * back with the new key, and the hub refuses to register keys for Basic callers anyway (403).
 */
export const WEBAUTHN_OFF = 'Passkeys and security keys are not enabled on this server.';
export const HUB_CANNOT_ADD = "Under JupyterHub, keys are added on the hub's two-factor page, not in this panel.";

/** Adding a key asks for a code when a factor is linked, unless this session was opened with a key. */
export function addKeyNeedsCode(status: Status | null): boolean {
  if (!status) {
    return true;
  }
  return (status.enrolled || status.webauthn_keys > 0) && status.session_factor !== 'webauthn';
}

/** Runs the API calls of the panel's buttons and keeps the state; the widget renders whatever it holds. */
export class PanelController {
  private current: PanelState = INITIAL;
  private readonly listeners = new Set<(state: PanelState) => void>();

  constructor(
    private readonly api: TwoFactorApi,
    private readonly onSessionLost: () => void = () => undefined,
    private readonly passkeys: PasskeySupport = passkeySupport(globalThis as BrowserScope)
  ) {}

  get state(): PanelState {
    return this.current;
  }

  get hubMode(): boolean {
    return this.api.hubMode;
  }

  /** Why this page cannot add a key (no WebAuthn API, an IP address, JupyterHub), or null when it can. */
  get passkeysUnavailable(): string | null {
    if (this.current.status?.webauthn_enabled === false) {
      return WEBAUTHN_OFF;
    }
    return this.passkeys.unavailable ?? (this.hubMode ? HUB_CANNOT_ADD : null);
  }

  subscribe(listener: (state: PanelState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  dispatch(event: Event): void {
    this.current = reduce(this.current, event);
    this.listeners.forEach(listener => listener(this.current));
  }

  /** The status, then the keys: a failing key list leaves the status shown. */
  refresh(): Promise<void> {
    return this.run(() => this.load());
  }

  open(purpose: Purpose): void {
    this.dispatch({ type: 'open', purpose });
  }

  finishPending(): void {
    this.dispatch({ type: 'finish-pending' });
  }

  back(): void {
    this.dispatch({ type: 'back' });
  }

  /** The credentials step's submit: start an enrollment or re-link, or replace the recovery codes. */
  submitCredentials(credentials: Credentials): Promise<void> {
    const step = this.current.step;
    if (step.name !== 'credentials') {
      return Promise.resolve();
    }
    return this.run(async () => {
      if (step.purpose === 'recovery') {
        const codes = await this.api.regenerateRecoveryCodes(credentials);
        this.dispatch({ type: 'codes', codes, notice: 'New recovery codes. Every earlier code stopped working.' });
        await this.quietRefresh();
      } else {
        const begin = step.purpose === 'enroll' ? this.api.beginEnrollment : this.api.beginRelink;
        this.dispatch({ type: 'provisioned', provisioning: await begin.call(this.api, credentials) });
      }
    });
  }

  /** The confirm step's submit: the code the new device shows (and in hub mode, the password again). */
  confirm(code: string, credentials?: Credentials): Promise<void> {
    return this.run(async () => {
      const codes = await this.api.confirm(code, credentials);
      this.dispatch({ type: 'codes', codes, notice: 'Your device is linked. Other sessions were signed out.' });
      await this.quietRefresh();
    });
  }

  cancelPending(credentials?: Credentials): Promise<void> {
    return this.run(async () => {
      await this.api.cancelEnrollment(credentials);
      this.dispatch({ type: 'cancelled' });
      await this.quietRefresh();
    });
  }

  openAddKey(): void {
    if (this.passkeysUnavailable === null) {
      this.dispatch({ type: 'add-key' });
    }
  }

  openRename(key: WebAuthnCredential): void {
    this.dispatch({ type: 'edit-key', action: 'rename', key });
  }

  openRemove(key: WebAuthnCredential): void {
    this.dispatch({ type: 'edit-key', action: 'remove', key });
  }

  /**
   * The add step's submit: options from the server (password, code), the browser's prompt, the new key to
   * the server. A first factor comes with recovery codes, shown once like after linking the app.
   */
  addKey(name: string, credentials: Credentials): Promise<void> {
    const authenticator = this.passkeys.authenticator;
    if (this.current.step.name !== 'key-add' || !authenticator) {
      return Promise.resolve();
    }
    return this.run(async () => {
      const options = await this.api.webauthnRegistrationOptions(credentials);
      this.dispatch({ type: 'prompt' });
      const credential = await authenticator.create(options);
      const added = await this.api.addWebAuthnCredential(name, credential, credentials);
      const notice = `The key “${added.credential?.name ?? name}” is added.`;
      if (added.recovery_codes.length > 0) {
        this.dispatch({
          type: 'codes',
          codes: added.recovery_codes,
          notice: `${notice} It is your second factor now.`
        });
      } else {
        this.dispatch({ type: 'done', notice });
      }
      await this.quietRefresh();
    });
  }

  /** The rename step's submit (in hub mode with the password). */
  renameKey(name: string, credentials?: Credentials): Promise<void> {
    const step = this.current.step;
    if (step.name !== 'key-rename') {
      return Promise.resolve();
    }
    return this.run(() =>
      this.changeKey(async () => {
        const renamed = await this.api.renameWebAuthnCredential(step.key.id, name, credentials);
        this.dispatch({ type: 'done', notice: `The key is renamed to “${renamed?.name ?? name}”.` });
      })
    );
  }

  /** The remove step's submit. A 409 (the last factor) shows the server's message as it is. */
  removeKey(credentials: Credentials): Promise<void> {
    const step = this.current.step;
    if (step.name !== 'key-remove') {
      return Promise.resolve();
    }
    return this.run(() =>
      this.changeKey(async () => {
        await this.api.removeWebAuthnCredential(step.key.id, credentials);
        this.dispatch({ type: 'done', notice: `The key “${step.key.name}” is removed: it no longer logs you in.` });
      })
    );
  }

  /** The user has saved the recovery codes: forget them. */
  acknowledge(): void {
    this.dispatch({ type: 'back' });
  }

  /** The panel closes: drop every secret and code, and stop telling anyone. */
  dispose(): void {
    this.dispatch({ type: 'closed' });
    this.listeners.clear();
  }

  private async run(work: () => Promise<void>): Promise<void> {
    this.dispatch({ type: 'busy' });
    try {
      await work();
    } catch (err) {
      const error = problem(err);
      this.dispatch({ type: 'failed', error });
      if (error.kind === 'session') {
        this.onSessionLost();
      }
    }
  }

  /** A rename or removal; a key that is gone already (404) or a refusal (409) also refreshes the list. */
  private async changeKey(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (err instanceof TwoFactorError && err.kind === 'conflict') {
        await this.quietRefresh();
      }
      throw err;
    }
    await this.quietRefresh();
  }

  /** The status, then the keys (none asked for where keys are turned off: their route answers 404). */
  private async load(): Promise<void> {
    const status = await this.api.status();
    this.dispatch({ type: 'status', status });
    const enabled = status.webauthn_enabled !== false;
    this.dispatch({ type: 'keys', keys: enabled ? await this.api.webauthnCredentials() : [] });
  }

  /** New counts and keys after a change; a failure here must not hide the change's own result. */
  private async quietRefresh(): Promise<void> {
    try {
      await this.load();
    } catch {
      // the next refresh or the session monitor will tell
    }
  }
}
