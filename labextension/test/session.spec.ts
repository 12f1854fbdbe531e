import { Status, TwoFactorError } from '../src/api';
import { expiryMessage, loginUrl } from '../src/expiry';
import { MonitorOptions, SessionMonitor, TICK_SECONDS, formatRemaining, statusText } from '../src/session';
import { status } from './fakes';

const NOW = 1_800_000_000;

describe('SessionMonitor', () => {
  let clock: number;
  beforeEach(() => {
    jest.useFakeTimers();
    clock = NOW;
  });
  afterEach(() => jest.useRealTimers());

  function monitor(probe: MonitorOptions['probe']) {
    const events = { onChange: jest.fn(), onWarning: jest.fn(), onEnded: jest.fn() };
    const m = new SessionMonitor({ probe, pollSeconds: 30, warnSeconds: 300, now: () => clock * 1000, ...events });
    return { m, ...events };
  }

  const advance = async (seconds: number) => {
    clock += seconds;
    await jest.advanceTimersByTimeAsync(seconds * 1000);
  };

  it('counts down, warns once a few minutes before the end, and polls', async () => {
    const probe = jest.fn(async (): Promise<Status> => status({ session_expires_at: NOW + 600 }));
    const { m, onChange, onWarning, onEnded } = monitor(probe);
    m.start();
    await advance(0);
    expect(onChange).toHaveBeenLastCalledWith({ status: expect.any(Object), remaining: 600, ended: false });
    await advance(300 + TICK_SECONDS);
    expect(onWarning).toHaveBeenCalledTimes(1);
    await advance(120);
    expect(onWarning).toHaveBeenCalledTimes(1);
    expect(probe.mock.calls.length).toBeGreaterThanOrEqual(1 + Math.floor(435 / 30));
    expect(onEnded).not.toHaveBeenCalled();
    m.stop();
  });

  it.each<[string, Error, number]>([
    ['a refused session ends it', new TwoFactorError('session', 'gone', 403), 1],
    ['a network blip does not', new TwoFactorError('network', 'offline'), 0],
    ['a store outage does not', new TwoFactorError('unavailable', 'down', 503), 0]
  ])('%s', async (_name, error, ended) => {
    const probe = jest
      .fn()
      .mockResolvedValueOnce(status({ session_expires_at: NOW + 3600 }))
      .mockRejectedValue(error);
    const { m, onEnded, onChange } = monitor(probe);
    m.start();
    await advance(30);
    await advance(30);
    expect(onEnded).toHaveBeenCalledTimes(ended);
    if (ended) {
      expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ ended: true }));
      const polls = probe.mock.calls.length;
      await advance(120);
      expect(probe.mock.calls.length).toBe(polls); // stopped
    }
    m.stop();
  });

  it('ends only once however many report it', () => {
    const { m, onEnded } = monitor(jest.fn());
    m.end();
    m.end();
    expect(onEnded).toHaveBeenCalledTimes(1);
  });
});

describe('what the user reads', () => {
  it.each<[number, string]>([
    [30, '<1 min'],
    [60, '1 min'],
    [59 * 60 + 59, '59 min'],
    [3600, '1 h 0 min'],
    [8 * 3600 - 1, '7 h 59 min']
  ])('%s seconds left: %s', (seconds, text) => {
    expect(formatRemaining(seconds)).toBe(text);
  });

  it.each<[string, Parameters<typeof statusText>[0], string]>([
    ['loading', { status: null, remaining: null, ended: false }, '2FA'],
    ['linked', { status: status(), remaining: 4000, ended: false }, '2FA: on · 1 h 6 min left'],
    [
      'not linked',
      { status: status({ enrolled: false }), remaining: 100, ended: false },
      '2FA: not linked · 1 min left'
    ],
    ['hub mode', { status: status(), remaining: null, ended: false }, '2FA: on'],
    ['locked', { status: status({ locked: true }), remaining: null, ended: false }, '2FA: locked'],
    ['ended', { status: status(), remaining: 0, ended: true }, '2FA: session ended']
  ])('status bar, %s', (_name, snapshot, text) => {
    expect(statusText(snapshot)).toBe(text);
  });

  it.each<[string, string, string]>([
    ['/', '/lab/tree/a b.ipynb', '/login?next=%2Flab%2Ftree%2Fa%20b.ipynb'],
    ['/base/', '/base/lab?reset', '/base/login?next=%2Fbase%2Flab%3Freset'],
    ['/hub', '/user/ada/lab', '/hub/login?next=%2Fuser%2Fada%2Flab']
  ])('login URL from %s at %s', (base, where, url) => {
    const [pathname, query] = where.split('?');
    expect(loginUrl(base, { pathname, search: query ? `?${query}` : '' })).toBe(url);
  });

  it('says to save first when documents are unsaved', () => {
    expect(expiryMessage([])).not.toMatch(/unsaved/);
    expect(expiryMessage(['a.ipynb', 'b.py'])).toMatch(/unsaved changes: a\.ipynb, b\.py.*new tab.*save/);
  });
});
