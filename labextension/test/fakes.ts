/** Test doubles at the boundary: a transport that answers from a script, and the provisioning it reveals. */

import { Provisioning, Status, Transport } from '../src/api';

export interface Call {
  url: string;
  init: RequestInit;
}

export type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | Error;

export const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

export const PROVISIONING: Provisioning = {
  otpauth_uri: `otpauth://totp/Jupyter:ada?secret=${SECRET}&issuer=Jupyter`,
  secret: SECRET,
  manual_key: 'JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP',
  qr_svg: `<svg xmlns="http://www.w3.org/2000/svg" class="qr-${SECRET}"><rect width="1" height="1"/></svg>`,
  expires_at: 1_900_000_000
};

export const CODES = ['abcde-fghjk', 'mnpqr-stvwx'];

export function status(overrides: Partial<Status> = {}): Status {
  return {
    username: 'ada',
    enrolled: true,
    pending: false,
    recovery_codes_left: 10,
    locked: false,
    policy: 'required',
    optional_until: null,
    session_factor: 'totp',
    session_expires_at: 1_900_000_000,
    ...overrides
  };
}

/** Answers each request with the next scripted reply (an Error is thrown, as fetch does offline). */
export function scripted(...replies: Reply[]): { transport: Transport; calls: Call[] } {
  const calls: Call[] = [];
  const transport: Transport = async (url, init) => {
    calls.push({ url, init });
    const reply = replies.shift();
    if (reply === undefined) {
      throw new Error(`unexpected request ${init.method} ${url}`);
    }
    if (reply instanceof Error) {
      throw reply;
    }
    const body =
      reply.body === undefined ? null : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    return new Response(body, { status: reply.status, headers: reply.headers });
  };
  return { transport, calls };
}
