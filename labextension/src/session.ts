/**
 * Watches this browser session: polls `GET status` (cheap, and refused with 403 as soon as the session
 * expired or was revoked elsewhere), counts down to `session_expires_at` between polls, warns once shortly
 * before the end and reports the end once. No DOM; timers and clock are injected for Jest.
 */

import { Status, TwoFactorError } from './api';

export interface SessionSnapshot {
  status: Status | null;
  /** Seconds left in this session, or null when the server does not say (hub mode). */
  remaining: number | null;
  ended: boolean;
}

export interface MonitorOptions {
  /** Asks the server; throws `TwoFactorError('session')` when the session is gone. */
  probe: () => Promise<Status | null>;
  pollSeconds: number;
  warnSeconds: number;
  onChange: (snapshot: SessionSnapshot) => void;
  onWarning: (remaining: number) => void;
  onEnded: () => void;
  now?: () => number;
}

/** How often the countdown on the status bar is redrawn between polls. */
export const TICK_SECONDS = 15;

export function formatRemaining(seconds: number): string {
  if (seconds < 60) {
    return '<1 min';
  }
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The status bar's text. */
export function statusText(snapshot: SessionSnapshot): string {
  if (snapshot.ended) {
    return '2FA: session ended';
  }
  const status = snapshot.status;
  if (!status) {
    return '2FA';
  }
  const state = status.locked ? 'locked' : status.enrolled ? 'on' : 'not linked';
  return snapshot.remaining === null ? `2FA: ${state}` : `2FA: ${state} · ${formatRemaining(snapshot.remaining)} left`;
}

export class SessionMonitor {
  private status: Status | null = null;
  private ended = false;
  private warned = false;
  private timers: ReturnType<typeof setInterval>[] = [];

  constructor(private readonly options: MonitorOptions) {}

  private now(): number {
    return (this.options.now ?? Date.now)() / 1000;
  }

  get snapshot(): SessionSnapshot {
    const expires = this.status?.session_expires_at;
    const remaining = expires ? Math.max(0, expires - this.now()) : null;
    return { status: this.status, remaining, ended: this.ended };
  }

  start(): void {
    this.stop();
    void this.check();
    this.timers = [
      setInterval(() => void this.check(), this.options.pollSeconds * 1000),
      setInterval(() => this.countdown(), TICK_SECONDS * 1000)
    ];
  }

  stop(): void {
    this.timers.forEach(timer => clearInterval(timer));
    this.timers = [];
  }

  /** Poll now (also after the panel changed something, or when the tab comes back into view). */
  async check(): Promise<void> {
    if (this.ended) {
      return;
    }
    try {
      this.status = await this.options.probe();
    } catch (err) {
      if (err instanceof TwoFactorError && err.kind === 'session') {
        this.end();
      }
      return; // a network blip or a 503 is not the end of the session: the next poll tells
    }
    this.tick();
  }

  /** Someone else saw the session refused (a panel call): same as a poll that found it gone. */
  end(): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.stop();
    this.options.onChange(this.snapshot);
    this.options.onEnded();
  }

  /** Between polls: redraw, and ask the server early once the clock says the time is up. */
  private countdown(): void {
    const remaining = this.tick();
    if (remaining !== null && remaining <= 0) {
      void this.check(); // the server decides: a skewed clock must not end a live session
    }
  }

  private tick(): number | null {
    const snapshot = this.snapshot;
    this.options.onChange(snapshot);
    const remaining = this.ended ? null : snapshot.remaining;
    if (remaining !== null && remaining > 0 && remaining <= this.options.warnSeconds && !this.warned) {
      this.warned = true;
      this.options.onWarning(remaining);
    }
    return remaining;
  }
}
