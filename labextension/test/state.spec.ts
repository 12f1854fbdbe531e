import {
  AddedCredential,
  ErrorKind,
  Provisioning,
  Status,
  TwoFactorApi,
  TwoFactorError,
  WebAuthnCredential
} from '../src/api';
import {
  addKeyNeedsCode,
  Event,
  HUB_CANNOT_ADD,
  INITIAL,
  WEBAUTHN_OFF,
  PanelController,
  PanelState,
  Problem,
  reduce
} from '../src/state';
import { Authenticator, CreationOptionsJSON, PasskeySupport, RegistrationResponseJSON } from '../src/webauthn';
import { CODES, CREATION_OPTIONS, KEY, PHONE, PROVISIONING, REGISTRATION, SECRET, status } from './fakes';

/** An API whose every method answers from a queue of results or errors, as the server would. */
class FakeApi {
  hubMode = false;
  readonly calls: string[] = [];
  /** What every refresh lists (not from the queue, so the older tests need not script it). */
  keys: WebAuthnCredential[] = [];
  private readonly answers: (unknown | TwoFactorError)[] = [];

  answer(...values: (unknown | TwoFactorError)[]): this {
    this.answers.push(...values);
    return this;
  }

  private next(name: string): Promise<never> {
    this.calls.push(name);
    const value = this.answers.shift();
    return value instanceof TwoFactorError ? Promise.reject(value) : Promise.resolve(value as never);
  }

  status = (): Promise<Status> => this.next('status');
  beginEnrollment = (): Promise<Provisioning> => this.next('beginEnrollment');
  beginRelink = (): Promise<Provisioning> => this.next('beginRelink');
  confirm = (): Promise<string[]> => this.next('confirm');
  cancelEnrollment = (): Promise<void> => this.next('cancelEnrollment');
  regenerateRecoveryCodes = (): Promise<string[]> => this.next('regenerateRecoveryCodes');
  webauthnCredentials = (): Promise<WebAuthnCredential[]> => {
    this.calls.push('webauthnCredentials');
    return Promise.resolve(this.keys);
  };
  webauthnRegistrationOptions = (): Promise<CreationOptionsJSON> => this.next('webauthnRegistrationOptions');
  addWebAuthnCredential = (): Promise<AddedCredential> => this.next('addWebAuthnCredential');
  renameWebAuthnCredential = (): Promise<WebAuthnCredential> => this.next('renameWebAuthnCredential');
  removeWebAuthnCredential = (): Promise<void> => this.next('removeWebAuthnCredential');
}

/** The browser's prompt: answers the registration, or refuses as the browser would. */
class FakeAuthenticator implements Authenticator {
  readonly seen: CreationOptionsJSON[] = [];
  outcome: RegistrationResponseJSON | TwoFactorError = REGISTRATION;

  create = (options: CreationOptionsJSON): Promise<RegistrationResponseJSON> => {
    this.seen.push(options);
    const outcome = this.outcome;
    return outcome instanceof TwoFactorError ? Promise.reject(outcome) : Promise.resolve(outcome);
  };
}

const supported = (authenticator: Authenticator): PasskeySupport => ({ authenticator, unavailable: null });

const fail = (kind: ErrorKind, message = `${kind}!`, retryAfter: number | null = null): TwoFactorError =>
  new TwoFactorError(kind, message, 0, retryAfter);

function controller(
  api: FakeApi,
  onSessionLost = jest.fn(),
  passkeys: PasskeySupport = supported(new FakeAuthenticator())
): PanelController {
  return new PanelController(api as unknown as TwoFactorApi, onSessionLost, passkeys);
}

/** No secret, QR code, otpauth URI or recovery code anywhere in the state. */
function expectNoSecrets(state: PanelState): void {
  const text = JSON.stringify(state);
  for (const secret of [SECRET, PROVISIONING.qr_svg, PROVISIONING.manual_key, ...CODES]) {
    expect(text).not.toContain(secret);
  }
}

const scanning: PanelState = { ...INITIAL, status: status(), step: { name: 'confirm', provisioning: PROVISIONING } };
const problem = (kind: ErrorKind): Problem => ({ kind, message: kind, retryAfter: null });

describe('reduce', () => {
  it.each<[string, PanelState, Event, Partial<PanelState>]>([
    ['first status shows the overview', INITIAL, { type: 'status', status: status() }, { step: { name: 'overview' } }],
    ['a refresh keeps the step', scanning, { type: 'status', status: status() }, { step: scanning.step }],
    [
      'open a form',
      { ...INITIAL, step: { name: 'overview' } },
      { type: 'open', purpose: 'relink' },
      { step: { name: 'credentials', purpose: 'relink' } }
    ],
    [
      'a pending link from earlier',
      { ...INITIAL, step: { name: 'overview' } },
      { type: 'finish-pending' },
      { step: { name: 'confirm', provisioning: null } }
    ],
    [
      'wrong code keeps the QR code',
      scanning,
      { type: 'failed', error: problem('rejected') },
      { step: scanning.step, error: problem('rejected') }
    ],
    ['throttled keeps the QR code', scanning, { type: 'failed', error: problem('throttled') }, { step: scanning.step }],
    [
      'network failure keeps the QR code',
      scanning,
      { type: 'failed', error: problem('network') },
      { step: scanning.step }
    ],
    ['lock-out drops it', scanning, { type: 'failed', error: problem('locked') }, { step: { name: 'overview' } }],
    [
      'an expired pending enrollment drops it',
      scanning,
      { type: 'failed', error: problem('conflict') },
      { step: { name: 'overview' } }
    ],
    ['a lost session drops it', scanning, { type: 'failed', error: problem('session') }, { step: { name: 'ended' } }],
    ['cancel drops it', scanning, { type: 'cancelled' }, { step: { name: 'overview' } }],
    ['back drops it', scanning, { type: 'back' }, { step: { name: 'overview' } }],
    [
      'confirmed: codes replace it',
      scanning,
      { type: 'codes', codes: CODES, notice: 'ok' },
      { step: { name: 'codes', codes: CODES } }
    ],
    ['closing forgets everything', { ...scanning, error: problem('rejected') }, { type: 'closed' }, INITIAL],
    [
      'the keys arrive',
      { ...INITIAL, step: { name: 'overview' } },
      { type: 'keys', keys: [KEY] },
      { keys: [KEY], step: { name: 'overview' } }
    ],
    [
      'add a key',
      { ...INITIAL, step: { name: 'overview' } },
      { type: 'add-key' },
      { step: { name: 'key-add', waiting: false } }
    ],
    [
      'the browser prompt opens',
      { ...INITIAL, step: { name: 'key-add', waiting: false }, busy: true },
      { type: 'prompt' },
      { step: { name: 'key-add', waiting: true }, busy: true }
    ],
    [
      'a prompt outside the add step changes nothing',
      { ...INITIAL, step: { name: 'overview' } },
      { type: 'prompt' },
      { step: { name: 'overview' } }
    ],
    [
      'a cancelled prompt keeps the form, not the prompt',
      { ...INITIAL, step: { name: 'key-add', waiting: true }, busy: true },
      { type: 'failed', error: problem('browser') },
      { step: { name: 'key-add', waiting: false }, busy: false, error: problem('browser') }
    ],
    [
      'rename a key',
      { ...INITIAL, step: { name: 'overview' } },
      { type: 'edit-key', action: 'rename', key: KEY },
      { step: { name: 'key-rename', key: KEY } }
    ],
    [
      'remove a key',
      { ...INITIAL, step: { name: 'overview' } },
      { type: 'edit-key', action: 'remove', key: KEY },
      { step: { name: 'key-remove', key: KEY } }
    ],
    [
      'the last factor cannot be removed',
      { ...INITIAL, step: { name: 'key-remove', key: KEY } },
      { type: 'failed', error: problem('conflict') },
      { step: { name: 'overview' }, error: problem('conflict') }
    ],
    [
      'a change is done',
      { ...INITIAL, step: { name: 'key-rename', key: KEY }, busy: true },
      { type: 'done', notice: 'Renamed.' },
      { step: { name: 'overview' }, busy: false, notice: 'Renamed.' }
    ],
    [
      'busy clears the last error',
      { ...scanning, error: problem('rejected') },
      { type: 'busy' },
      { busy: true, error: null }
    ]
  ])('%s', (_name, state, event, expected) => {
    expect(reduce(state, event)).toMatchObject(expected);
  });
});

describe('PanelController', () => {
  it('links a device: password -> QR and key -> code -> recovery codes -> done, then forgets them', async () => {
    const api = new FakeApi().answer(status({ enrolled: false }), PROVISIONING, CODES, status());
    const c = controller(api);
    await c.refresh();
    c.open('enroll');
    await c.submitCredentials({ password: 'pw' });
    expect(c.state.step).toEqual({ name: 'confirm', provisioning: PROVISIONING });
    await c.confirm('123456');
    expect(c.state.step).toEqual({ name: 'codes', codes: CODES });
    expectNoSecrets({ ...c.state, step: { name: 'overview' } }); // the codes step holds only the codes
    expect(c.state.status?.enrolled).toBe(true);
    c.acknowledge();
    expectNoSecrets(c.state);
    expect(api.calls).toEqual([
      'status',
      'webauthnCredentials',
      'beginEnrollment',
      'confirm',
      'status',
      'webauthnCredentials'
    ]);
  });

  it.each<[string, 'enroll' | 'relink' | 'recovery', TwoFactorError, string]>([
    ['wrong password', 'enroll', fail('rejected', 'Invalid password or code.'), 'credentials'],
    ['wrong code', 'relink', fail('rejected', 'Invalid password or code.'), 'credentials'],
    ['back-off', 'recovery', fail('throttled', 'Wait.', 30), 'credentials'],
    ['network failure', 'relink', fail('network'), 'credentials'],
    ['store down', 'recovery', fail('unavailable'), 'credentials'],
    ['lock-out', 'relink', fail('locked', 'Locked: call the help desk.'), 'overview'],
    ['already linked', 'enroll', fail('conflict'), 'overview']
  ])('credentials refused: %s', async (_name, purpose, error, step) => {
    const c = controller(new FakeApi().answer(status(), error));
    await c.refresh();
    c.open(purpose);
    await c.submitCredentials({ password: 'pw', otp: '000000' });
    expect(c.state.step.name).toBe(step);
    expect(c.state.error).toEqual({ kind: error.kind, message: error.message, retryAfter: error.retryAfter });
    expect(c.state.busy).toBe(false);
  });

  it.each<[string, TwoFactorError, string, boolean]>([
    ['wrong code', fail('rejected'), 'confirm', true],
    ['back-off', fail('throttled', 'Wait.', 30), 'confirm', true],
    ['network failure', fail('network'), 'confirm', true],
    ['lock-out', fail('locked'), 'overview', false],
    ['expired pending enrollment', fail('conflict', 'The pending enrollment expired.'), 'overview', false],
    ['session revoked', fail('session'), 'ended', false]
  ])('confirm refused: %s', async (_name, error, step, kept) => {
    const onSessionLost = jest.fn();
    const c = controller(new FakeApi().answer(status(), PROVISIONING, error), onSessionLost);
    await c.refresh();
    c.open('relink');
    await c.submitCredentials({ password: 'pw', otp: '123456' });
    await c.confirm('000000');
    expect(c.state.step.name).toBe(step);
    expect(c.state.error?.kind).toBe(error.kind);
    if (kept) {
      expect(c.state.step).toEqual({ name: 'confirm', provisioning: PROVISIONING });
    } else {
      expectNoSecrets(c.state);
    }
    expect(onSessionLost).toHaveBeenCalledTimes(error.kind === 'session' ? 1 : 0);
  });

  it('regenerates recovery codes and shows them once', async () => {
    const api = new FakeApi().answer(status(), CODES, status({ recovery_codes_left: 2 }));
    const c = controller(api);
    await c.refresh();
    c.open('recovery');
    await c.submitCredentials({ password: 'pw', otp: '123456' });
    expect(c.state.step).toEqual({ name: 'codes', codes: CODES });
    expect(c.state.status?.recovery_codes_left).toBe(2);
    c.acknowledge();
    expectNoSecrets(c.state);
  });

  it('cancels a pending enrollment', async () => {
    const api = new FakeApi().answer(status({ pending: true }), undefined, status());
    const c = controller(api);
    await c.refresh();
    c.finishPending();
    await c.cancelPending();
    expect(c.state.step.name).toBe('overview');
    expect(c.state.notice).toMatch(/cancelled/);
    expect(api.calls).toEqual(['status', 'webauthnCredentials', 'cancelEnrollment', 'status', 'webauthnCredentials']);
  });

  it('forgets the QR code and key when the panel closes, and tells nobody afterwards', async () => {
    const c = controller(new FakeApi().answer(status(), PROVISIONING));
    const seen = jest.fn();
    c.subscribe(seen);
    await c.refresh();
    c.open('relink');
    await c.submitCredentials({ password: 'pw', otp: '123456' });
    c.dispose();
    expectNoSecrets(c.state);
    expect(c.state).toEqual(INITIAL);
    seen.mockClear();
    c.dispatch({ type: 'busy' });
    expect(seen).not.toHaveBeenCalled();
  });

  it('reports a session lost at the first status', async () => {
    const onSessionLost = jest.fn();
    const c = controller(new FakeApi().answer(fail('session')), onSessionLost);
    await c.refresh();
    expect(c.state.step.name).toBe('ended');
    expect(onSessionLost).toHaveBeenCalledTimes(1);
  });
});

describe('adding a key asks for a code', () => {
  it.each<[string, Status | null, boolean]>([
    ['the app is linked', status(), true],
    ['keys only', status({ enrolled: false, webauthn_keys: 1 }), true],
    ['no factor yet', status({ enrolled: false }), false],
    ['a session opened with a key', status({ webauthn_keys: 1, session_factor: 'webauthn' }), false],
    ['before the status is known', null, true]
  ])('%s: %s', (_name, state, expected) => {
    expect(addKeyNeedsCode(state)).toBe(expected);
  });
});

describe('PanelController with passkeys', () => {
  it('lists the keys with the status', async () => {
    const api = new FakeApi().answer(status({ webauthn_keys: 2 }));
    api.keys = [KEY, PHONE];
    const c = controller(api);
    await c.refresh();
    expect(c.state.keys).toEqual([KEY, PHONE]);
    expect(api.calls).toEqual(['status', 'webauthnCredentials']);
  });

  it('asks for no keys, and offers none, where keys are turned off', async () => {
    const api = new FakeApi().answer(status({ webauthn_enabled: false }));
    const c = controller(api);
    await c.refresh();
    expect(api.calls).toEqual(['status']);
    expect(c.state.keys).toEqual([]);
    expect(c.passkeysUnavailable).toBe(WEBAUTHN_OFF);
  });

  it('keeps the status when the list fails', async () => {
    const api = new FakeApi().answer(status());
    api.webauthnCredentials = () => Promise.reject(fail('unavailable', 'Store down.'));
    const c = controller(api);
    await c.refresh();
    expect(c.state.status).toEqual(status());
    expect(c.state.keys).toBeNull();
    expect(c.state.error?.message).toBe('Store down.');
  });

  it('adds a key: password and code -> options -> browser prompt -> server -> notice', async () => {
    const authenticator = new FakeAuthenticator();
    const api = new FakeApi().answer(
      status(),
      CREATION_OPTIONS,
      { credential: { ...KEY, name: 'My YubiKey' }, recovery_codes: [] },
      status({ webauthn_keys: 1 })
    );
    const c = controller(api, jest.fn(), supported(authenticator));
    const steps: string[] = [];
    c.subscribe(state => steps.push(state.step.name === 'key-add' && state.step.waiting ? 'prompt' : state.step.name));
    await c.refresh();
    c.openAddKey();
    api.keys = [KEY];
    await c.addKey('My YubiKey', { password: 'pw', otp: '123456' });
    expect(authenticator.seen).toEqual([CREATION_OPTIONS]);
    expect(steps).toContain('prompt');
    expect(c.state.step).toEqual({ name: 'overview' });
    expect(c.state.notice).toBe('The key “My YubiKey” is added.');
    expect(c.state.status?.webauthn_keys).toBe(1);
    expect(c.state.keys).toEqual([KEY]);
    expect(api.calls).toEqual([
      'status',
      'webauthnCredentials',
      'webauthnRegistrationOptions',
      'addWebAuthnCredential',
      'status',
      'webauthnCredentials'
    ]);
  });

  it('shows the recovery codes once when the key is the first factor', async () => {
    const api = new FakeApi().answer(
      status({ enrolled: false }),
      CREATION_OPTIONS,
      { credential: KEY, recovery_codes: CODES },
      status({ enrolled: false, webauthn_keys: 1 })
    );
    const c = controller(api);
    await c.refresh();
    c.openAddKey();
    await c.addKey('My YubiKey', { password: 'pw' });
    expect(c.state.step).toEqual({ name: 'codes', codes: CODES });
    expect(c.state.notice).toMatch(/is added\. It is your second factor now\./);
    c.acknowledge();
    expectNoSecrets(c.state);
  });

  it.each<[string, TwoFactorError | null, TwoFactorError | null, string, boolean]>([
    ['wrong password or code', fail('rejected', 'Invalid password or code.'), null, 'key-add', false],
    ['back-off', fail('throttled', 'Wait.', 30), null, 'key-add', false],
    ['an IP address', fail('invalid', 'WebAuthn needs a host name such as localhost'), null, 'key-add', false],
    ['lock-out', fail('locked'), null, 'overview', false],
    ['the prompt cancelled', null, fail('browser', 'No key was added.'), 'key-add', true],
    ['the key refused by the server', null, fail('invalid', 'The key did not verify its user.'), 'key-add', true],
    ['the session ended', null, fail('session'), 'ended', true]
  ])('adding a key fails: %s', async (_name, optionsError, laterError, step, prompted) => {
    const authenticator = new FakeAuthenticator();
    const api = new FakeApi().answer(status(), optionsError ?? CREATION_OPTIONS);
    if (laterError?.kind === 'browser') {
      authenticator.outcome = laterError;
    } else if (laterError) {
      api.answer(laterError);
    }
    const c = controller(api, jest.fn(), supported(authenticator));
    await c.refresh();
    c.openAddKey();
    await c.addKey('Key', { password: 'pw', otp: '000000' });
    const error = optionsError ?? laterError!;
    expect(c.state.step.name).toBe(step);
    if (c.state.step.name === 'key-add') {
      expect(c.state.step.waiting).toBe(false);
    }
    expect(c.state.error).toEqual({ kind: error.kind, message: error.message, retryAfter: error.retryAfter });
    expect(authenticator.seen).toHaveLength(prompted ? 1 : 0);
  });

  it.each<[string, boolean, PasskeySupport, string]>([
    [
      'no WebAuthn in this browser',
      false,
      { authenticator: null, unavailable: 'No WebAuthn here.' },
      'No WebAuthn here.'
    ],
    ['JupyterHub', true, supported(new FakeAuthenticator()), HUB_CANNOT_ADD]
  ])('does not add keys: %s', async (_name, hubMode, passkeys, why) => {
    const api = new FakeApi().answer(status());
    api.hubMode = hubMode;
    const c = controller(api, jest.fn(), passkeys);
    await c.refresh();
    expect(c.passkeysUnavailable).toBe(why);
    c.openAddKey();
    expect(c.state.step.name).toBe('overview');
    await c.addKey('Key', { password: 'pw' });
    expect(api.calls).toEqual(['status', 'webauthnCredentials']);
  });

  it('renames a key', async () => {
    const api = new FakeApi().answer(status({ webauthn_keys: 1 }), { ...KEY, name: 'Blue key' }, status());
    api.keys = [KEY];
    const c = controller(api);
    await c.refresh();
    c.openRename(KEY);
    api.keys = [{ ...KEY, name: 'Blue key' }];
    await c.renameKey('Blue key');
    expect(c.state.step.name).toBe('overview');
    expect(c.state.notice).toBe('The key is renamed to “Blue key”.');
    expect(c.state.keys?.map(key => key.name)).toEqual(['Blue key']);
  });

  it('removes a key', async () => {
    const api = new FakeApi().answer(status({ webauthn_keys: 2 }), undefined, status({ webauthn_keys: 1 }));
    api.keys = [KEY, PHONE];
    const c = controller(api);
    await c.refresh();
    c.openRemove(PHONE);
    api.keys = [KEY];
    await c.removeKey({ password: 'pw' });
    expect(c.state.notice).toBe('The key “Phone” is removed: it no longer logs you in.');
    expect(c.state.keys).toEqual([KEY]);
    expect(c.state.status?.webauthn_keys).toBe(1);
  });

  it.each<[string, TwoFactorError, string, boolean]>([
    ['the last factor (409): the message as it is', fail('conflict', 'Add another factor first.'), 'overview', true],
    ['a wrong password', fail('rejected', 'Invalid password or code.'), 'key-remove', false]
  ])('removing a key is refused: %s', async (_name, error, step, refreshed) => {
    const api = new FakeApi().answer(status({ enrolled: false, webauthn_keys: 1 }), error);
    if (refreshed) {
      api.answer(status({ enrolled: false, webauthn_keys: 1 }));
    }
    api.keys = [KEY];
    const c = controller(api);
    await c.refresh();
    c.openRemove(KEY);
    await c.removeKey({ password: 'pw' });
    expect(c.state.step.name).toBe(step);
    expect(c.state.error?.message).toBe(error.message);
    expect(api.calls.filter(call => call === 'status')).toHaveLength(refreshed ? 2 : 1);
  });
});
