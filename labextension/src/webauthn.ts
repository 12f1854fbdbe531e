/**
 * The browser's side of adding a passkey or security key: the WebAuthn API (`navigator.credentials.create`)
 * between the server's JSON options and the JSON answer the server reads back.
 *
 * WebAuthn speaks ArrayBuffers; the server speaks JSON with every binary field as base64url without padding.
 * Browsers with WebAuthn Level 3 convert both ways themselves (`PublicKeyCredential.parseCreationOptionsFromJSON`,
 * `PublicKeyCredential.toJSON`); for the others, the few binary fields are converted here by hand.
 *
 * No DOM rendering and no API calls: the controller (state.ts) gets an `Authenticator` (the browser's, or a
 * test's fake) and never touches `navigator` itself.
 */

import { TwoFactorError } from './api';

/** `PublicKeyCredentialCreationOptionsJSON` (WebAuthn Level 3), as the server sends it. */
export interface CreationOptionsJSON {
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
  challenge: string;
  pubKeyCredParams: { type: string; alg: number }[];
  timeout?: number;
  excludeCredentials?: { id: string; type: string; transports?: string[] }[];
  authenticatorSelection?: Record<string, unknown>;
  attestation?: string;
  extensions?: Record<string, unknown>;
  [other: string]: unknown;
}

/** `RegistrationResponseJSON` (WebAuthn Level 3): what `PublicKeyCredential.toJSON()` gives after `create`. */
export interface RegistrationResponseJSON {
  id: string;
  rawId: string;
  type: string;
  response: {
    clientDataJSON: string;
    attestationObject: string;
    transports?: string[];
    [other: string]: unknown;
  };
  clientExtensionResults: Record<string, unknown>;
  authenticatorAttachment?: string | null;
}

/** Adds a key in the browser: the server's options in, the new credential's JSON out. */
export interface Authenticator {
  create(options: CreationOptionsJSON): Promise<RegistrationResponseJSON>;
}

/** Either an authenticator to use, or why adding a key is not offered on this page. */
export type PasskeySupport =
  { authenticator: Authenticator; unavailable: null } | { authenticator: null; unavailable: string };

export const NEEDS_HOST_NAME = "Passkeys need the browser's WebAuthn API on a host name such as localhost.";

/** base64url without padding, as WebAuthn's JSON forms and the server use. */
export function toBase64url(data: ArrayBuffer | ArrayBufferView): string {
  // isView, not instanceof ArrayBuffer: a buffer from another realm (an iframe, a test's sandbox) is one too.
  const bytes = ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
  let binary = '';
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The bytes of a base64url string (padding optional); anything else is the server's mistake, not ours. */
export function fromBase64url(text: string): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new TwoFactorError('invalid', 'The server sent WebAuthn options this panel cannot read.');
  }
  const base64 = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, c => c.charCodeAt(0));
}

/** The options' three binary fields decoded by hand; everything else goes to the browser as it came. */
export function decodeCreationOptions(json: CreationOptionsJSON): PublicKeyCredentialCreationOptions {
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: json.excludeCredentials?.map(descriptor => ({
      ...descriptor,
      id: fromBase64url(descriptor.id)
    }))
  } as unknown as PublicKeyCredentialCreationOptions;
}

/** WebAuthn Level 3's static and instance methods, which TypeScript's DOM library does not declare yet. */
interface Level3Static {
  parseCreationOptionsFromJSON?: (json: CreationOptionsJSON) => PublicKeyCredentialCreationOptions;
}

interface Level3Credential {
  toJSON?: () => unknown;
}

/** The browser's own parser when it has one (it knows the options this code has never heard of). */
export function creationOptions(
  json: CreationOptionsJSON,
  pkc: Level3Static | undefined
): PublicKeyCredentialCreationOptions {
  if (typeof pkc?.parseCreationOptionsFromJSON === 'function') {
    try {
      return pkc.parseCreationOptionsFromJSON(json);
    } catch {
      // an early implementation that refuses a field it does not know: decode by hand
    }
  }
  return decodeCreationOptions(json);
}

function isRegistrationJSON(value: unknown): value is RegistrationResponseJSON {
  const json = value as Partial<RegistrationResponseJSON> | null;
  return (
    typeof json?.id === 'string' &&
    typeof json.rawId === 'string' &&
    typeof json.response?.clientDataJSON === 'string' &&
    typeof json.response?.attestationObject === 'string'
  );
}

/** `credential.toJSON()` where the browser has it (and it gives the right shape), else the same by hand. */
export function registrationJSON(credential: PublicKeyCredential): RegistrationResponseJSON {
  const toJSON = (credential as PublicKeyCredential & Level3Credential).toJSON;
  if (typeof toJSON === 'function') {
    try {
      const json = toJSON.call(credential);
      if (isRegistrationJSON(json)) {
        return json;
      }
    } catch {
      // some password managers' replacements of the API throw here: encode by hand
    }
  }
  const response = credential.response as AuthenticatorAttestationResponse;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      transports: typeof response.getTransports === 'function' ? response.getTransports() : []
    },
    clientExtensionResults: (credential.getClientExtensionResults?.() ?? {}) as Record<string, unknown>,
    authenticatorAttachment: credential.authenticatorAttachment ?? null
  };
}

/** What the WebAuthn API's refusals mean to the user (https://w3c.github.io/webauthn/#sctn-createCredential). */
const REFUSALS: Record<string, string> = {
  NotAllowedError: 'No key was added: the browser prompt was cancelled or timed out. Try again.',
  AbortError: 'No key was added: the browser prompt was cancelled. Try again.',
  InvalidStateError: 'This key is already registered for your account. Use another key.',
  NotSupportedError: 'This key or browser does not support the key types the server accepts.',
  SecurityError:
    "The browser refused to use passkeys for this page's address: the server's WebAuthn settings name another host."
};

/** A refusal of `navigator.credentials.create` as the panel's error (kind `browser`: the step stays open). */
export function browserRefusal(err: unknown): TwoFactorError {
  if (err instanceof TwoFactorError) {
    return err;
  }
  const name = (err as { name?: unknown } | null)?.name;
  const message = typeof name === 'string' ? REFUSALS[name] : undefined;
  return new TwoFactorError('browser', message ?? 'The browser could not create a key. Try again.');
}

/** The parts of `window` WebAuthn needs: passed in, so tests can describe any browser. */
export interface BrowserScope {
  navigator?: { credentials?: Pick<CredentialsContainer, 'create'> };
  PublicKeyCredential?: unknown;
  location?: { hostname: string };
  isSecureContext?: boolean;
}

/** `127.0.0.1`, `[::1]` (URL host names keep IPv6's brackets): WebAuthn's relying party must be a host name. */
export function isIpAddress(hostname: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.includes(':');
}

/** The browser's authenticator, or the plain reason this page cannot add a key. */
export function passkeySupport(scope: BrowserScope): PasskeySupport {
  const container = scope.navigator?.credentials;
  const pkc = scope.PublicKeyCredential as Level3Static | undefined;
  const hostname = scope.location?.hostname ?? '';
  let why: string | null = null;
  if (isIpAddress(hostname)) {
    why = `This page is on an IP address (${hostname}): open it with a host name to add a key here.`;
  } else if (!container || typeof container.create !== 'function' || !pkc) {
    why =
      scope.isSecureContext === false
        ? 'This page is neither HTTPS nor localhost, so the browser hides its WebAuthn API.'
        : 'This browser has no WebAuthn API.';
  }
  if (why !== null) {
    return { authenticator: null, unavailable: `${NEEDS_HOST_NAME} ${why}` };
  }
  const authenticator: Authenticator = {
    async create(options) {
      let credential: Credential | null;
      try {
        credential = await container!.create({ publicKey: creationOptions(options, pkc) });
      } catch (err) {
        throw browserRefusal(err);
      }
      if (!credential || credential.type !== 'public-key') {
        throw browserRefusal(null);
      }
      return registrationJSON(credential as PublicKeyCredential);
    }
  };
  return { authenticator, unavailable: null };
}
