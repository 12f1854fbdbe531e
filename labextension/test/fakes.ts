/** Test doubles at the boundary: a transport that answers from a script, and the provisioning it reveals. */

import { Provisioning, Status, Transport, WebAuthnCredential } from '../src/api';
import { CreationOptionsJSON, RegistrationResponseJSON } from '../src/webauthn';

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
    webauthn_keys: 0,
    session_factor: 'totp',
    session_expires_at: 1_900_000_000,
    ...overrides
  };
}

export const KEY: WebAuthnCredential = {
  id: 'AQIDBAUG-_8',
  name: 'My YubiKey',
  created_at: 1_800_000_000,
  last_used_at: null,
  transports: ['usb', 'nfc'],
  aaguid: 'cb69481e-8ff7-4039-93ec-0a2729a154a8'
};

export const PHONE: WebAuthnCredential = {
  ...KEY,
  id: 'CQoLDA',
  name: 'Phone',
  last_used_at: 1_800_000_600,
  transports: ['hybrid', 'internal']
};

/** What py_webauthn's `options_to_json` gives for a registration (bytes as base64url without padding). */
export const CREATION_OPTIONS: CreationOptionsJSON = {
  rp: { name: 'Jupyter', id: 'localhost' },
  user: { id: 'YWRh', name: 'ada', displayName: 'ada' },
  challenge: '-_-_AAEC', // bytes fb ff bf 00 01 02: base64 would have + and /
  pubKeyCredParams: [
    { type: 'public-key', alg: -7 },
    { type: 'public-key', alg: -257 }
  ],
  timeout: 120000,
  excludeCredentials: [{ id: KEY.id, type: 'public-key', transports: ['usb', 'nfc'] }],
  authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
  attestation: 'none'
};

export const REGISTRATION: RegistrationResponseJSON = {
  id: 'DQ4PEA',
  rawId: 'DQ4PEA',
  type: 'public-key',
  response: {
    clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0',
    attestationObject: 'o2NmbXRkbm9uZQ',
    transports: ['usb']
  },
  clientExtensionResults: {},
  authenticatorAttachment: 'cross-platform'
};

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
