import { ErrorKind, Provisioning, Status, TwoFactorApi, TwoFactorError } from '../src/api';
import { Event, INITIAL, PanelController, PanelState, Problem, reduce } from '../src/state';
import { CODES, PROVISIONING, SECRET, status } from './fakes';

/** An API whose every method answers from a queue of results or errors, as the server would. */
class FakeApi {
  readonly hubMode = false;
  readonly calls: string[] = [];
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
}

const fail = (kind: ErrorKind, message = `${kind}!`, retryAfter: number | null = null): TwoFactorError =>
  new TwoFactorError(kind, message, 0, retryAfter);

function controller(api: FakeApi, onSessionLost = jest.fn()): PanelController {
  return new PanelController(api as unknown as TwoFactorApi, onSessionLost);
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
    expect(api.calls).toEqual(['status', 'beginEnrollment', 'confirm', 'status']);
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
    expect(api.calls).toEqual(['status', 'cancelEnrollment', 'status']);
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
