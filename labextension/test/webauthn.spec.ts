import { TwoFactorError } from '../src/api';
import {
  BrowserScope,
  CreationOptionsJSON,
  creationOptions,
  decodeCreationOptions,
  fromBase64url,
  NEEDS_HOST_NAME,
  passkeySupport,
  registrationJSON,
  toBase64url
} from '../src/webauthn';
import { CREATION_OPTIONS, KEY, REGISTRATION } from './fakes';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const asBytes = (source: BufferSource): number[] =>
  Array.from(
    ArrayBuffer.isView(source)
      ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
      : new Uint8Array(source)
  );

/** What a browser's `PublicKeyCredential` looks like after `create`, with or without Level 3's `toJSON`. */
function credential(toJSON?: () => unknown): PublicKeyCredential {
  const response = {
    clientDataJSON: new TextEncoder().encode('{"type":"webauthn.create"}').buffer,
    attestationObject: bytes(0xa3, 0x63, 0x66, 0x6d, 0x74, 0x64, 0x6e, 0x6f, 0x6e, 0x65).buffer,
    getTransports: () => ['usb']
  };
  return {
    id: 'DQ4PEA',
    rawId: bytes(13, 14, 15, 16).buffer,
    type: 'public-key',
    authenticatorAttachment: 'cross-platform',
    response,
    getClientExtensionResults: () => ({ credProps: { rk: true } }),
    ...(toJSON ? { toJSON } : {})
  } as unknown as PublicKeyCredential;
}

describe('base64url', () => {
  it.each<[string, number[], string]>([
    ['empty', [], ''],
    ['no padding', [0x61], 'YQ'],
    ['- and _ instead of + and /', [0xfb, 0xff, 0xbf, 0x00, 0x01, 0x02], '-_-_AAEC'],
    ['a last block of two bytes', [0xff, 0xee], '_-4']
  ])('%s', (_name, values, text) => {
    expect(toBase64url(bytes(...values))).toBe(text);
    expect(Array.from(fromBase64url(text))).toEqual(values);
  });

  it('encodes a view, not the whole buffer under it', () => {
    const buffer = bytes(1, 2, 3, 0xff, 0xee, 4);
    expect(toBase64url(new Uint8Array(buffer.buffer, 3, 2))).toBe('_-4');
  });

  it('reads padded input too', () => {
    expect(Array.from(fromBase64url('YQ=='))).toEqual([0x61]);
  });

  it.each(['a+b/', 'abc!', 'a', 'ab=c'])('refuses %s', text => {
    expect(() => fromBase64url(text)).toThrow(TwoFactorError);
  });
});

describe('creation options', () => {
  it('decodes the challenge, the user id and the excluded ids by hand; keeps the rest', () => {
    const options = decodeCreationOptions(CREATION_OPTIONS);
    expect(asBytes(options.challenge)).toEqual([0xfb, 0xff, 0xbf, 0x00, 0x01, 0x02]);
    expect(asBytes(options.user.id)).toEqual([0x61, 0x64, 0x61]);
    expect(options.user.name).toBe('ada');
    expect(options.excludeCredentials?.map(d => toBase64url(d.id as Uint8Array))).toEqual([KEY.id]);
    expect(options.excludeCredentials?.[0].transports).toEqual(['usb', 'nfc']);
    expect(options.pubKeyCredParams).toEqual(CREATION_OPTIONS.pubKeyCredParams);
    expect(options.authenticatorSelection).toEqual({ residentKey: 'preferred', userVerification: 'required' });
    expect(CREATION_OPTIONS.challenge).toBe('-_-_AAEC'); // the server's JSON is not changed
  });

  it('decodes options without excluded keys', () => {
    const { excludeCredentials: _none, ...first } = CREATION_OPTIONS;
    expect(decodeCreationOptions(first as CreationOptionsJSON).excludeCredentials).toBeUndefined();
  });

  it("uses the browser's parser when it has one", () => {
    const parsed = { parsed: true } as unknown as PublicKeyCredentialCreationOptions;
    const parseCreationOptionsFromJSON = jest.fn(() => parsed);
    expect(creationOptions(CREATION_OPTIONS, { parseCreationOptionsFromJSON })).toBe(parsed);
    expect(parseCreationOptionsFromJSON).toHaveBeenCalledWith(CREATION_OPTIONS);
  });

  it('decodes by hand when the parser is missing or throws', () => {
    const parseCreationOptionsFromJSON = () => {
      throw new TypeError('unknown member');
    };
    for (const pkc of [undefined, {}, { parseCreationOptionsFromJSON }]) {
      expect(asBytes(creationOptions(CREATION_OPTIONS, pkc).challenge)).toEqual([0xfb, 0xff, 0xbf, 0x00, 0x01, 0x02]);
    }
  });
});

describe('registration response', () => {
  const byHand = {
    id: 'DQ4PEA',
    rawId: 'DQ4PEA',
    type: 'public-key',
    response: {
      clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0',
      attestationObject: 'o2NmbXRkbm9uZQ',
      transports: ['usb']
    },
    clientExtensionResults: { credProps: { rk: true } },
    authenticatorAttachment: 'cross-platform'
  };

  it("is the browser's toJSON() when it has one", () => {
    expect(registrationJSON(credential(() => REGISTRATION))).toBe(REGISTRATION);
  });

  it.each<[string, (() => unknown) | undefined]>([
    ['no toJSON', undefined],
    [
      'a toJSON that throws',
      () => {
        throw new Error('not here');
      }
    ],
    ['a toJSON with ArrayBuffers in it', () => ({ id: 'DQ4PEA', rawId: new ArrayBuffer(4), response: {} })]
  ])('is encoded by hand with %s', (_name, toJSON) => {
    expect(registrationJSON(credential(toJSON))).toEqual(byHand);
  });

  it('has no transports when the browser cannot tell', () => {
    const bare = credential();
    (bare.response as unknown as { getTransports?: unknown }).getTransports = undefined;
    expect(registrationJSON(bare).response.transports).toEqual([]);
  });
});

describe('passkeySupport', () => {
  const browser = (overrides: Partial<BrowserScope> = {}): BrowserScope => ({
    navigator: { credentials: { create: jest.fn(async () => credential()) } },
    PublicKeyCredential: {},
    location: { hostname: 'localhost' },
    isSecureContext: true,
    ...overrides
  });

  it.each<[string, BrowserScope, string]>([
    ['no window at all (Node)', {}, 'This browser has no WebAuthn API.'],
    ['no navigator.credentials', browser({ navigator: {} }), 'This browser has no WebAuthn API.'],
    ['no PublicKeyCredential', browser({ PublicKeyCredential: undefined }), 'This browser has no WebAuthn API.'],
    [
      'plain HTTP on a host name',
      browser({ navigator: {}, PublicKeyCredential: undefined, isSecureContext: false }),
      'This page is neither HTTPS nor localhost'
    ],
    ['an IPv4 address', browser({ location: { hostname: '127.0.0.1' } }), 'IP address (127.0.0.1)'],
    ['an IPv6 address', browser({ location: { hostname: '[::1]' } }), 'IP address ([::1])']
  ])('not offered: %s', (_name, scope, why) => {
    const support = passkeySupport(scope);
    expect(support.authenticator).toBeNull();
    expect(support.unavailable).toContain(NEEDS_HOST_NAME);
    expect(support.unavailable).toContain(why);
  });

  it.each(['localhost', 'hub.example.org', 'jupyter'])('offered on %s', hostname => {
    expect(passkeySupport(browser({ location: { hostname } })).unavailable).toBeNull();
  });

  it('creates a key with the decoded options and answers its JSON', async () => {
    const scope = browser();
    const { authenticator } = passkeySupport(scope);
    await expect(authenticator!.create(CREATION_OPTIONS)).resolves.toMatchObject({
      id: 'DQ4PEA',
      response: { attestationObject: 'o2NmbXRkbm9uZQ' }
    });
    const create = scope.navigator!.credentials!.create as jest.Mock;
    const { publicKey } = create.mock.calls[0][0] as CredentialCreationOptions;
    expect(asBytes(publicKey!.challenge)).toEqual([0xfb, 0xff, 0xbf, 0x00, 0x01, 0x02]);
  });

  it.each<[string, unknown, string]>([
    ['cancelled or timed out', new DOMException('x', 'NotAllowedError'), 'cancelled or timed out'],
    ['a key that is registered already', new DOMException('x', 'InvalidStateError'), 'already registered'],
    ['a relying party for another host', new DOMException('x', 'SecurityError'), 'name another host'],
    ['anything else', new Error('boom'), 'could not create a key'],
    ['no credential', null, 'could not create a key']
  ])('reports %s as a browser error', async (_name, outcome, message) => {
    const create = jest.fn(async () => {
      if (outcome !== null) {
        throw outcome;
      }
      return null;
    });
    const { authenticator } = passkeySupport(browser({ navigator: { credentials: { create } } }));
    const error = (await authenticator!.create(CREATION_OPTIONS).catch(err => err)) as TwoFactorError;
    expect(error).toBeInstanceOf(TwoFactorError);
    expect(error.kind).toBe('browser');
    expect(error.message).toContain(message);
  });

  it('never opens the prompt for options it cannot read', async () => {
    const scope = browser();
    const { authenticator } = passkeySupport(scope);
    const error = await authenticator!.create({ ...CREATION_OPTIONS, challenge: 'not base64!' }).catch(err => err);
    expect(error).toMatchObject({ kind: 'invalid' });
    expect(scope.navigator!.credentials!.create).not.toHaveBeenCalled();
  });
});
