import { ErrorKind, TwoFactorApi, TwoFactorError } from '../src/api';
import { CODES, CREATION_OPTIONS, KEY, PROVISIONING, REGISTRATION, Reply, scripted, status } from './fakes';

const API = '/user-base/2fa/api/';

type Operation = (api: TwoFactorApi) => Promise<unknown>;

const relink: Operation = api => api.beginRelink({ password: 'pw', otp: '123456' });
const confirm: Operation = api => api.confirm('123456');
const removeKey: Operation = api => api.removeWebAuthnCredential(KEY.id, { password: 'pw', otp: '123456' });
const keyOptions: Operation = api => api.webauthnRegistrationOptions({ password: 'pw', otp: '123456' });

describe('TwoFactorApi on a single server', () => {
  it.each<[string, Operation, string, string, unknown, Reply, unknown]>([
    ['status', api => api.status(), 'GET', 'status', undefined, { status: 200, body: status() }, status()],
    [
      'enrollment',
      api => api.beginEnrollment({ password: 'pw' }),
      'POST',
      'enrollment',
      { password: 'pw' },
      { status: 201, body: PROVISIONING },
      PROVISIONING
    ],
    [
      'relink',
      relink,
      'POST',
      'relink',
      { password: 'pw', otp: '123456' },
      { status: 201, body: PROVISIONING },
      PROVISIONING
    ],
    [
      'confirm',
      confirm,
      'POST',
      'enrollment/confirm',
      { code: '123456' },
      { status: 200, body: { recovery_codes: CODES } },
      CODES
    ],
    [
      'recovery codes',
      api => api.regenerateRecoveryCodes({ password: 'pw', otp: 'abcde-fghjk' }),
      'POST',
      'recovery-codes',
      { password: 'pw', otp: 'abcde-fghjk' },
      { status: 200, body: { recovery_codes: CODES } },
      CODES
    ],
    ['cancel', api => api.cancelEnrollment(), 'DELETE', 'enrollment', undefined, { status: 204 }, undefined],
    [
      'list keys',
      api => api.webauthnCredentials(),
      'GET',
      'webauthn/credentials',
      undefined,
      { status: 200, body: { credentials: [KEY] } },
      [KEY]
    ],
    [
      'key options',
      keyOptions,
      'POST',
      'webauthn/registration-options',
      { password: 'pw', otp: '123456' },
      { status: 200, body: { options: CREATION_OPTIONS } },
      CREATION_OPTIONS
    ],
    [
      'key options without a factor yet',
      api => api.webauthnRegistrationOptions({ password: 'pw' }),
      'POST',
      'webauthn/registration-options',
      { password: 'pw', otp: '' },
      { status: 200, body: { options: CREATION_OPTIONS } },
      CREATION_OPTIONS
    ],
    [
      'add a key',
      api => api.addWebAuthnCredential('My YubiKey', REGISTRATION),
      'POST',
      'webauthn/credentials',
      { name: 'My YubiKey', credential: REGISTRATION },
      { status: 201, body: { credential: KEY, recovery_codes: [] } },
      { credential: KEY, recovery_codes: [] }
    ],
    [
      'add the first factor',
      api => api.addWebAuthnCredential('My YubiKey', REGISTRATION),
      'POST',
      'webauthn/credentials',
      { name: 'My YubiKey', credential: REGISTRATION },
      { status: 201, body: { credential: KEY, recovery_codes: CODES } },
      { credential: KEY, recovery_codes: CODES }
    ],
    [
      'add a key, the answer without codes',
      api => api.addWebAuthnCredential('My YubiKey', REGISTRATION),
      'POST',
      'webauthn/credentials',
      { name: 'My YubiKey', credential: REGISTRATION },
      { status: 201, body: { credential: KEY } },
      { credential: KEY, recovery_codes: [] }
    ],
    [
      'rename a key',
      api => api.renameWebAuthnCredential(KEY.id, 'Blue key'),
      'PATCH',
      `webauthn/credentials/${KEY.id}`,
      { name: 'Blue key' },
      { status: 200, body: { credential: { ...KEY, name: 'Blue key' } } },
      { ...KEY, name: 'Blue key' }
    ],
    [
      'remove a key',
      removeKey,
      'DELETE',
      `webauthn/credentials/${KEY.id}`,
      { password: 'pw', otp: '123456' },
      { status: 204 },
      undefined
    ]
  ])('%s', async (_name, operation, method, path, body, reply, expected) => {
    const { transport, calls } = scripted(reply);
    await expect(operation(new TwoFactorApi({ apiUrl: API, transport }))).resolves.toEqual(expected);
    expect(calls).toHaveLength(1);
    const [{ url, init }] = calls;
    expect([init.method, url]).toEqual([method, API + path]);
    expect(init.body === undefined ? undefined : JSON.parse(String(init.body))).toEqual(body);
    expect(url).not.toMatch(/pw|123456/); // secrets travel in bodies only
    expect(init.headers).not.toHaveProperty('Authorization'); // the session cookie and XSRF (makeRequest)
  });

  const wrong = { status: 403, body: { message: 'Invalid password or code.' } };
  it.each<[string, Operation, Reply[], ErrorKind, string, number | null]>([
    ['wrong password', relink, [wrong, { status: 200, body: status() }], 'rejected', 'Invalid password or code.', null],
    ['wrong code', confirm, [wrong, { status: 200, body: status() }], 'rejected', 'Invalid password or code.', null],
    [
      'lock-out',
      relink,
      [
        { status: 403, body: { message: 'Locked. Call the help desk.' } },
        { status: 200, body: status({ locked: true }) }
      ],
      'locked',
      'Locked. Call the help desk.',
      null
    ],
    [
      'back-off',
      relink,
      [{ status: 429, body: { message: 'Too many attempts.' }, headers: { 'Retry-After': '30' } }],
      'throttled',
      'Too many attempts.',
      30
    ],
    [
      'expired pending enrollment',
      confirm,
      [{ status: 409, body: { message: 'The enrollment expired.' } }],
      'conflict',
      'The enrollment expired.',
      null
    ],
    [
      'no pending enrollment to cancel',
      api => api.cancelEnrollment(),
      [{ status: 404, body: { message: 'None.' } }],
      'conflict',
      'None.',
      null
    ],
    [
      'session revoked during a change',
      relink,
      [wrong, { status: 403, body: { message: 'Forbidden' } }],
      'session',
      'Your session has ended.',
      null
    ],
    [
      'session expired at status',
      api => api.status(),
      [{ status: 403, body: { message: 'Forbidden' } }],
      'session',
      'Your session has ended.',
      null
    ],
    [
      'store down',
      api => api.status(),
      [{ status: 503, body: { message: 'Unavailable.' } }],
      'unavailable',
      'Unavailable.',
      null
    ],
    ['bad input', confirm, [{ status: 400, body: { message: 'code: too long' } }], 'invalid', 'code: too long', null],
    [
      'network failure',
      relink,
      [new TypeError('Failed to fetch')],
      'network',
      'The server could not be reached. Check your connection and try again.',
      null
    ],
    [
      'a proxy error page',
      confirm,
      [{ status: 502, body: '<html>Bad gateway</html>' }],
      'network',
      'The server could not be reached. Check your connection and try again.',
      null
    ],
    [
      'removing the last factor',
      removeKey,
      [{ status: 409, body: { message: 'This is your only second factor: link the app or add another key first.' } }],
      'conflict',
      'This is your only second factor: link the app or add another key first.',
      null
    ],
    [
      'removing a key that is gone',
      removeKey,
      [{ status: 404, body: { message: 'No such key.' } }],
      'conflict',
      'No such key.',
      null
    ],
    [
      'removing with a wrong password',
      removeKey,
      [wrong, { status: 200, body: status() }],
      'rejected',
      'Invalid password or code.',
      null
    ],
    [
      'key options on an IP address',
      keyOptions,
      [
        {
          status: 400,
          body: { message: "WebAuthn needs a host name such as localhost, not an IP address ('127.0.0.1')" }
        }
      ],
      'invalid',
      "WebAuthn needs a host name such as localhost, not an IP address ('127.0.0.1')",
      null
    ],
    [
      'a 403 whose status check fails too',
      relink,
      [wrong, new TypeError('offline')],
      'rejected',
      'Invalid password or code.',
      null
    ]
  ])('%s', async (_name, operation, replies, kind, message, retryAfter) => {
    const { transport } = scripted(...replies);
    const error = (await operation(new TwoFactorApi({ apiUrl: API, transport })).catch(err => err)) as TwoFactorError;
    expect(error).toBeInstanceOf(TwoFactorError);
    expect({ kind: error.kind, message: error.message, retryAfter: error.retryAfter }).toEqual({
      kind,
      message,
      retryAfter
    });
  });
});

describe('TwoFactorApi under JupyterHub', () => {
  const hub = (...replies: Reply[]) => {
    const fake = scripted(...replies);
    return { ...fake, api: new TwoFactorApi({ apiUrl: '/hub/2fa/api/', transport: fake.transport, hubUser: 'zoë' }) };
  };

  it('sends Basic credentials (UTF-8) without cookies on changes, never a token', async () => {
    const { api, calls } = hub({ status: 201, body: PROVISIONING });
    await api.beginRelink({ password: 'pässword', otp: '123456' });
    const { url, init } = calls[0];
    expect(url).toBe('/hub/2fa/api/relink');
    expect(init.credentials).toBe('omit');
    const header = (init.headers as Record<string, string>)['Authorization'];
    expect(header).toMatch(/^Basic /);
    const bytes = Uint8Array.from(atob(header.slice(6)), c => c.charCodeAt(0));
    expect(new TextDecoder().decode(bytes)).toBe('zoë:pässword');
  });

  it('reads the status with the hub cookie and no credentials', async () => {
    const { api, calls } = hub({ status: 200, body: status({ session_expires_at: undefined }) });
    await expect(api.status()).resolves.toMatchObject({ username: 'ada' });
    expect(calls[0].init.credentials).toBe('same-origin');
    expect(calls[0].init.headers).not.toHaveProperty('Authorization');
  });

  it.each<[string, Reply[], ErrorKind]>([
    // The hub cookie is not this server's session: a refused hub status is no reason to leave the page.
    ['a refused status', [{ status: 403, body: { status: 403, message: 'log in to the hub' } }], 'rejected'],
    [
      'a refused change, status refused too',
      [
        { status: 403, body: { message: 'no' } },
        { status: 403, body: {} }
      ],
      'rejected'
    ]
  ])('%s is not a lost session', async (_name, replies, kind) => {
    const { api } = hub(...replies);
    const call = replies.length === 1 ? api.status() : api.confirm('123456', { password: 'pw' });
    await expect(call).rejects.toMatchObject({ kind });
  });

  it('renames and removes keys with Basic credentials, lists them with the hub cookie', async () => {
    const { api, calls } = hub(
      { status: 200, body: { credentials: [KEY] } },
      { status: 200, body: { credential: KEY } },
      { status: 204 }
    );
    await api.webauthnCredentials();
    await api.renameWebAuthnCredential(KEY.id, 'Blue key', { password: 'pw' });
    await api.removeWebAuthnCredential(KEY.id, { password: 'pw' });
    expect(calls.map(c => [c.init.method, c.init.credentials])).toEqual([
      ['GET', 'same-origin'],
      ['PATCH', 'omit'],
      ['DELETE', 'omit']
    ]);
    expect(calls[0].init.headers).not.toHaveProperty('Authorization');
    expect((calls[1].init.headers as Record<string, string>)['Authorization']).toMatch(/^Basic /);
    expect(JSON.parse(String(calls[2].init.body))).toEqual({ password: 'pw', otp: '' });
  });

  it('asks for the password at confirm and cancel', async () => {
    const { api, calls } = hub({ status: 200, body: { recovery_codes: CODES } }, { status: 204 });
    await api.confirm('123456', { password: 'pw' });
    await api.cancelEnrollment({ password: 'pw' });
    const basic = `Basic ${btoa('zo\u00c3\u00ab:pw')}`; // ë in UTF-8
    expect(calls.map(c => (c.init.headers as Record<string, string>)['Authorization'])).toEqual([basic, basic]);
  });
});
