/**
 * The panel's state machine: a pure reducer (`reduce`) and the controller that runs API calls and feeds it.
 * No DOM here, so Jest drives every path without a browser.
 *
 * Secrets (the provisioning's QR code, key and otpauth URI) and recovery codes live only in the `confirm` and
 * `codes` steps. Every transition out of those steps builds a new state without them, so once the step is
 * done, fails for good, or the panel closes, nothing in the panel references them any more.
 */

import { Credentials, ErrorKind, Provisioning, Status, TwoFactorApi, TwoFactorError } from './api';

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
  /** The session expired or was revoked: nothing more to do here. */
  | { name: 'ended' };

export interface Problem {
  kind: ErrorKind;
  message: string;
  retryAfter: number | null;
}

export interface PanelState {
  status: Status | null;
  step: Step;
  busy: boolean;
  error: Problem | null;
  notice: string | null;
}

export type Event =
  | { type: 'busy' }
  | { type: 'status'; status: Status }
  | { type: 'open'; purpose: Purpose }
  | { type: 'finish-pending' }
  | { type: 'back' }
  | { type: 'provisioned'; provisioning: Provisioning }
  | { type: 'codes'; codes: string[]; notice: string }
  | { type: 'cancelled' }
  | { type: 'failed'; error: Problem }
  | { type: 'closed' };

export const INITIAL: PanelState = { status: null, step: { name: 'loading' }, busy: false, error: null, notice: null };

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
    case 'failed': {
      const { kind } = event.error;
      if (kind === 'session') {
        return { ...state, step: { name: 'ended' }, busy: false, error: event.error, notice: null };
      }
      const step: Step = FINAL.has(kind) ? { name: 'overview' } : state.step;
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

/** Runs the API calls of the panel's buttons and keeps the state; the widget renders whatever it holds. */
export class PanelController {
  private current: PanelState = INITIAL;
  private readonly listeners = new Set<(state: PanelState) => void>();

  constructor(
    private readonly api: TwoFactorApi,
    private readonly onSessionLost: () => void = () => undefined
  ) {}

  get state(): PanelState {
    return this.current;
  }

  get hubMode(): boolean {
    return this.api.hubMode;
  }

  subscribe(listener: (state: PanelState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  dispatch(event: Event): void {
    this.current = reduce(this.current, event);
    this.listeners.forEach(listener => listener(this.current));
  }

  refresh(): Promise<void> {
    return this.run(async () => this.dispatch({ type: 'status', status: await this.api.status() }));
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

  /** New counts after a change; a failure here must not hide the change's own result. */
  private async quietRefresh(): Promise<void> {
    try {
      this.dispatch({ type: 'status', status: await this.api.status() });
    } catch {
      // the next refresh or the session monitor will tell
    }
  }
}
