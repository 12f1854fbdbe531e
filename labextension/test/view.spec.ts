/**
 * @jest-environment jsdom
 */

import { Provisioning, Status, TwoFactorApi } from '../src/api';
import { PanelController } from '../src/state';
import { TwoFactorPanel } from '../src/widget';
import { CODES, PROVISIONING, SECRET, status } from './fakes';

/** Answers like the server; every call is recorded with its arguments. */
class ServerLikeApi {
  hubMode = false;
  readonly calls: [string, unknown[]][] = [];
  current: Status = status();
  confirmResult: () => Promise<string[]> = () => Promise.resolve(CODES);

  status = (): Promise<Status> => this.record('status', [], Promise.resolve(this.current));
  beginRelink = (...args: unknown[]): Promise<Provisioning> =>
    this.record('beginRelink', args, Promise.resolve(PROVISIONING));
  beginEnrollment = (...args: unknown[]): Promise<Provisioning> =>
    this.record('beginEnrollment', args, Promise.resolve(PROVISIONING));
  confirm = (...args: unknown[]): Promise<string[]> => this.record('confirm', args, this.confirmResult());
  cancelEnrollment = (...args: unknown[]): Promise<void> => this.record('cancelEnrollment', args, Promise.resolve());
  regenerateRecoveryCodes = (...args: unknown[]): Promise<string[]> =>
    this.record('regenerateRecoveryCodes', args, Promise.resolve(CODES));

  private record<T>(name: string, args: unknown[], result: Promise<T>): Promise<T> {
    this.calls.push([name, args]);
    return result;
  }
}

const settle = () => new Promise(resolve => setTimeout(resolve, 0));

async function openPanel(api: ServerLikeApi): Promise<TwoFactorPanel> {
  const panel = new TwoFactorPanel(new PanelController(api as unknown as TwoFactorApi));
  document.body.append(panel.node);
  await settle();
  return panel;
}

function click(panel: TwoFactorPanel, action: string): void {
  panel.node.querySelector<HTMLButtonElement>(`[data-action="${action}"]`)!.click();
}

async function submit(panel: TwoFactorPanel, values: Record<string, string>): Promise<HTMLInputElement[]> {
  const inputs = Array.from(panel.node.querySelectorAll<HTMLInputElement>('form input'));
  inputs.forEach(input => (input.value = values[input.name] ?? ''));
  panel.node.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
  await settle();
  return inputs;
}

/** Nothing of the provisioning left in the document. */
function expectGoneFromDom(): void {
  const html = document.body.innerHTML;
  expect(html).not.toContain(SECRET);
  expect(html).not.toContain(PROVISIONING.manual_key);
  expect(document.querySelector('svg')).toBeNull();
}

afterEach(() => document.body.replaceChildren());

describe('TwoFactorPanel', () => {
  it('shows the status', async () => {
    const panel = await openPanel(new ServerLikeApi());
    const text = (field: string) => panel.node.querySelector(`[data-field="${field}"]`)?.textContent;
    expect([text('username'), text('device'), text('codes-left'), text('policy')]).toEqual([
      'ada',
      'linked',
      '10',
      'required'
    ]);
    expect(text('expires')).toBeTruthy();
    panel.dispose();
  });

  it('re-links: clears the password, shows the QR code once, drops it when confirmed', async () => {
    const api = new ServerLikeApi();
    const panel = await openPanel(api);
    click(panel, 'relink');
    const inputs = await submit(panel, { password: 'hunter2', otp: '123456' });
    expect(inputs.map(input => input.value)).toEqual(['', '']);
    expect(api.calls).toContainEqual(['beginRelink', [{ password: 'hunter2', otp: '123456' }]]);
    expect(panel.node.querySelector('.jp-2fa-qr svg')).not.toBeNull();
    expect(panel.node.querySelector('.jp-2fa-key')?.textContent).toBe(PROVISIONING.manual_key);

    await submit(panel, { code: '654321' });
    expectGoneFromDom();
    expect(Array.from(panel.node.querySelectorAll('.jp-2fa-recovery-codes li')).map(li => li.textContent)).toEqual(
      CODES
    );
    click(panel, 'done');
    expect(document.body.innerHTML).not.toContain(CODES[0]);
    panel.dispose();
  });

  it('keeps the QR code after a wrong code, drops it from the DOM when the panel closes', async () => {
    const api = new ServerLikeApi();
    const { TwoFactorError } = await import('../src/api');
    api.confirmResult = () => Promise.reject(new TwoFactorError('rejected', 'Invalid password or code.'));
    const panel = await openPanel(api);
    click(panel, 'relink');
    await submit(panel, { password: 'hunter2', otp: '123456' });
    await submit(panel, { code: '000000' });
    expect(panel.node.querySelector('[role="alert"]')?.textContent).toBe('Invalid password or code.');
    expect(panel.node.querySelector('.jp-2fa-qr svg')).not.toBeNull();
    panel.close();
    expect(panel.isDisposed).toBe(true);
    expect(panel.node.innerHTML).toBe('');
    expectGoneFromDom();
    expect(JSON.stringify(panel.controller.state)).not.toContain(SECRET);
  });

  it('never runs script from the QR code', async () => {
    const api = new ServerLikeApi();
    api.beginRelink = () =>
      Promise.resolve({
        ...PROVISIONING,
        qr_svg: '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><rect/></svg>'
      });
    const panel = await openPanel(api);
    click(panel, 'relink');
    await submit(panel, { password: 'pw', otp: '123456' });
    expect(panel.node.querySelector('.jp-2fa-qr svg rect')).not.toBeNull();
    expect(panel.node.querySelector('script')).toBeNull();
    panel.dispose();
  });

  it.each<[string, Partial<Status>, string[]]>([
    ['no device yet', { enrolled: false }, ['enroll', 'refresh']],
    ['a device', {}, ['relink', 'recovery', 'refresh']],
    ['a pending link', { enrolled: false, pending: true }, ['enroll', 'pending', 'refresh']],
    ['cli-only policy', { policy: 'cli-only' }, ['recovery', 'refresh']],
    ['locked', { locked: true }, ['recovery', 'refresh']]
  ])('offers what the account allows: %s', async (_name, overrides, actions) => {
    const api = new ServerLikeApi();
    api.current = status(overrides);
    const panel = await openPanel(api);
    const offered = Array.from(panel.node.querySelectorAll<HTMLElement>('[data-action]')).map(b => b.dataset.action);
    expect(offered).toEqual(actions);
    panel.dispose();
  });

  it('cancels a pending enrollment; in hub mode with the password, which it then clears', async () => {
    const api = new ServerLikeApi();
    api.hubMode = true;
    api.current = status({ enrolled: false, pending: true, session_expires_at: undefined });
    const panel = await openPanel(api);
    expect(panel.node.querySelector('[data-field="hub"]')).not.toBeNull();
    click(panel, 'pending');
    const password = panel.node.querySelector<HTMLInputElement>('input[name="password"]')!;
    password.value = 'hunter2';
    click(panel, 'cancel');
    await settle();
    expect(password.value).toBe('');
    expect(api.calls).toContainEqual(['cancelEnrollment', [{ password: 'hunter2' }]]);
    expect(panel.node.querySelector('[role="status"]')?.textContent).toMatch(/cancelled/);
    panel.dispose();
  });
});
