/**
 * @jest-environment jsdom
 */

import { AddedCredential, Provisioning, Status, TwoFactorApi, TwoFactorError, WebAuthnCredential } from '../src/api';
import { PanelController } from '../src/state';
import { CreationOptionsJSON, NEEDS_HOST_NAME, PasskeySupport, passkeySupport } from '../src/webauthn';
import { TwoFactorPanel } from '../src/widget';
import { CODES, CREATION_OPTIONS, KEY, PHONE, PROVISIONING, REGISTRATION, SECRET, status } from './fakes';

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
  keys: WebAuthnCredential[] = [];
  added: AddedCredential = { credential: KEY, recovery_codes: [] };
  removeResult: () => Promise<void> = () => Promise.resolve();
  webauthnCredentials = (): Promise<WebAuthnCredential[]> =>
    this.record('webauthnCredentials', [], Promise.resolve(this.keys));
  webauthnRegistrationOptions = (...args: unknown[]): Promise<CreationOptionsJSON> =>
    this.record('webauthnRegistrationOptions', args, Promise.resolve(CREATION_OPTIONS));
  addWebAuthnCredential = (...args: unknown[]): Promise<AddedCredential> =>
    this.record('addWebAuthnCredential', args, Promise.resolve(this.added));
  renameWebAuthnCredential = (...args: unknown[]): Promise<WebAuthnCredential> =>
    this.record('renameWebAuthnCredential', args, Promise.resolve({ ...KEY, name: String(args[1]) }));
  removeWebAuthnCredential = (...args: unknown[]): Promise<void> =>
    this.record('removeWebAuthnCredential', args, this.removeResult());

  private record<T>(name: string, args: unknown[], result: Promise<T>): Promise<T> {
    this.calls.push([name, args]);
    return result;
  }
}

const settle = () => new Promise(resolve => setTimeout(resolve, 0));

/** A browser with WebAuthn whose prompt answers at once. */
const withWebAuthn: PasskeySupport = {
  authenticator: { create: () => Promise.resolve(REGISTRATION) },
  unavailable: null
};

/** By default the panel sees jsdom's window, which has no WebAuthn API. */
async function openPanel(api: ServerLikeApi, passkeys?: PasskeySupport): Promise<TwoFactorPanel> {
  const panel = new TwoFactorPanel(new PanelController(api as unknown as TwoFactorApi, undefined, passkeys));
  document.body.append(panel.node);
  await settle();
  return panel;
}

function click(panel: TwoFactorPanel, action: string, key?: string): void {
  const row = key ? `[data-key="${key}"] ` : '';
  panel.node.querySelector<HTMLButtonElement>(`${row}[data-action="${action}"]`)!.click();
}

function labels(panel: TwoFactorPanel): string[] {
  return Array.from(panel.node.querySelectorAll('form label > span')).map(span => span.textContent ?? '');
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
    ['locked', { locked: true }, ['recovery', 'refresh']],
    ['keys only', { enrolled: false, webauthn_keys: 1 }, ['recovery', 'refresh']],
    [
      'keys only, in a session opened with a key',
      { enrolled: false, webauthn_keys: 1, session_factor: 'webauthn' },
      ['enroll', 'recovery', 'refresh']
    ]
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

describe('TwoFactorPanel: passkeys and security keys', () => {
  it('lists the keys with their dates, and buttons named after each key', async () => {
    const api = new ServerLikeApi();
    api.current = status({ webauthn_keys: 2 });
    api.keys = [KEY, PHONE];
    const panel = await openPanel(api, withWebAuthn);
    expect(panel.node.querySelector('[data-field="webauthn-keys"]')?.textContent).toBe('2');
    const section = panel.node.querySelector('.jp-2fa-keys')!;
    expect(section.querySelector('h3')?.textContent).toBe('Passkeys and security keys');
    const headers = Array.from(section.querySelectorAll('thead th')).map(th => th.textContent);
    expect(headers).toEqual(['Name', 'Added', 'Last used', 'Actions']);
    const rows = Array.from(section.querySelectorAll('tbody tr')).map(tr =>
      Array.from(tr.children)
        .slice(0, 3)
        .map(cell => cell.textContent)
    );
    expect(rows).toEqual([
      ['My YubiKey', new Date(1_800_000_000_000).toLocaleString(), 'never'],
      ['Phone', new Date(1_800_000_000_000).toLocaleString(), new Date(1_800_000_600_000).toLocaleString()]
    ]);
    expect(section.querySelector(`[data-key="${PHONE.id}"] time`)?.getAttribute('datetime')).toBe(
      new Date(1_800_000_000_000).toISOString()
    );
    const names = Array.from(section.querySelectorAll('tbody button')).map(b => [
      b.textContent,
      b.getAttribute('aria-label')
    ]);
    expect(names).toEqual([
      ['Rename', 'Rename My YubiKey'],
      ['Remove', 'Remove My YubiKey'],
      ['Rename', 'Rename Phone'],
      ['Remove', 'Remove Phone']
    ]);
    expect(section.querySelector('[data-action="key-add"]')?.textContent).toBe('Add a passkey or security key');
    panel.dispose();
  });

  it('says so plainly where the browser cannot add a key', async () => {
    const api = new ServerLikeApi();
    api.keys = [KEY];
    const panel = await openPanel(api); // jsdom: no navigator.credentials
    const why = panel.node.querySelector('[data-field="passkeys-unavailable"]')?.textContent;
    expect(why).toContain(NEEDS_HOST_NAME);
    expect(panel.node.querySelector('[data-action="key-add"]')).toBeNull();
    expect(panel.node.querySelector(`[data-key="${KEY.id}"] [data-action="key-remove"]`)).not.toBeNull();
    panel.dispose();
  });

  it('says so on an IP address', async () => {
    const onIp = passkeySupport({
      navigator: { credentials: { create: jest.fn() } },
      PublicKeyCredential: {},
      location: { hostname: '127.0.0.1' }
    });
    const panel = await openPanel(new ServerLikeApi(), onIp);
    const why = panel.node.querySelector('[data-field="passkeys-unavailable"]')?.textContent;
    expect(why).toContain(NEEDS_HOST_NAME);
    expect(why).toContain('127.0.0.1');
    panel.dispose();
  });

  it('shows an empty list as a sentence', async () => {
    const panel = await openPanel(new ServerLikeApi(), withWebAuthn);
    expect(panel.node.querySelector('.jp-2fa-keys')?.textContent).toContain('No passkeys or security keys yet.');
    expect(panel.node.querySelector('.jp-2fa-keys table')).toBeNull();
    panel.dispose();
  });

  it.each<[string, Partial<Status>, string[]]>([
    ['the app linked', {}, ['Name of the key', 'Password', 'Current code or recovery code']],
    ['keys only', { enrolled: false, webauthn_keys: 1 }, ['Name of the key', 'Password', 'Recovery code']],
    ['no factor yet', { enrolled: false }, ['Name of the key', 'Password']],
    ['a session opened with a key', { webauthn_keys: 1, session_factor: 'webauthn' }, ['Name of the key', 'Password']]
  ])('asks what adding a key needs: %s', async (_name, overrides, fields) => {
    const api = new ServerLikeApi();
    api.current = status(overrides);
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-add');
    expect(labels(panel)).toEqual(fields);
    expect(document.activeElement?.getAttribute('name')).toBe('name');
    panel.dispose();
  });

  it('adds a key: clears the fields, sends the browser answer, tells the user', async () => {
    const api = new ServerLikeApi();
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-add');
    api.keys = [KEY];
    api.current = status({ webauthn_keys: 1 });
    const inputs = await submit(panel, { name: ' My YubiKey ', password: 'hunter2', otp: '123456' });
    expect(inputs.map(input => input.value)).toEqual(['', '', '']);
    expect(api.calls).toContainEqual(['webauthnRegistrationOptions', [{ password: 'hunter2', otp: '123456' }]]);
    expect(api.calls).toContainEqual([
      'addWebAuthnCredential',
      ['My YubiKey', REGISTRATION, { password: 'hunter2', otp: '123456' }]
    ]);
    expect(panel.node.querySelector('[role="status"]')?.textContent).toBe('The key “My YubiKey” is added.');
    expect(panel.node.querySelector(`[data-key="${KEY.id}"]`)).not.toBeNull();
    panel.dispose();
  });

  it("tells the user to follow the browser's prompt while it is open", async () => {
    let answer: () => void = () => undefined;
    const waiting: PasskeySupport = {
      authenticator: { create: () => new Promise(resolve => (answer = () => resolve(REGISTRATION))) },
      unavailable: null
    };
    const panel = await openPanel(new ServerLikeApi(), waiting);
    click(panel, 'key-add');
    await submit(panel, { name: 'Key', password: 'pw', otp: '123456' });
    const prompt = panel.node.querySelector('.jp-2fa-prompt');
    expect(prompt?.getAttribute('role')).toBe('status');
    expect(prompt?.textContent).toMatch(/^Follow your browser's prompt/);
    expect(panel.node.getAttribute('aria-busy')).toBe('true');
    expect(panel.node.querySelector<HTMLButtonElement>('form button[type="submit"]')?.disabled).toBe(true);
    answer();
    await settle();
    expect(panel.node.querySelector('.jp-2fa-prompt')).toBeNull();
    panel.dispose();
  });

  it('shows the recovery codes once when the key is the first factor', async () => {
    const api = new ServerLikeApi();
    api.current = status({ enrolled: false });
    api.added = { credential: KEY, recovery_codes: CODES };
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-add');
    await submit(panel, { name: 'My YubiKey', password: 'pw' });
    expect(Array.from(panel.node.querySelectorAll('.jp-2fa-recovery-codes li')).map(li => li.textContent)).toEqual(
      CODES
    );
    click(panel, 'done');
    expect(document.body.innerHTML).not.toContain(CODES[0]);
    panel.dispose();
  });

  it('renames a key from a field holding its name', async () => {
    const api = new ServerLikeApi();
    api.keys = [KEY];
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-rename', KEY.id);
    expect(panel.node.querySelector('h3')?.textContent).toBe('Rename “My YubiKey”');
    const name = panel.node.querySelector<HTMLInputElement>('input[name="name"]')!;
    expect(name.value).toBe('My YubiKey');
    expect(document.activeElement).toBe(name);
    await submit(panel, { name: 'Blue key' });
    expect(api.calls).toContainEqual(['renameWebAuthnCredential', [KEY.id, 'Blue key', undefined]]);
    expect(panel.node.querySelector('[role="status"]')?.textContent).toBe('The key is renamed to “Blue key”.');
    panel.dispose();
  });

  it('asks for the password to rename a key in hub mode', async () => {
    const api = new ServerLikeApi();
    api.hubMode = true;
    api.keys = [KEY];
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-rename', KEY.id);
    expect(labels(panel)).toEqual(['New name', 'Password']);
    await submit(panel, { name: 'Blue key', password: 'hunter2' });
    expect(api.calls).toContainEqual(['renameWebAuthnCredential', [KEY.id, 'Blue key', { password: 'hunter2' }]]);
    panel.dispose();
  });

  it('removes a key with the password and a current code', async () => {
    const api = new ServerLikeApi();
    api.keys = [KEY, PHONE];
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-remove', PHONE.id);
    expect(labels(panel)).toEqual(['Password', 'Current code or recovery code']);
    api.keys = [KEY];
    const inputs = await submit(panel, { password: 'hunter2', otp: '123456' });
    expect(inputs[0].value).toBe('');
    const sent = { password: 'hunter2', otp: '123456' };
    expect(api.calls).toContainEqual(['removeWebAuthnCredential', [PHONE.id, sent]]);
    expect(panel.node.querySelector('[role="status"]')?.textContent).toBe(
      'The key “Phone” is removed: it no longer logs you in.'
    );
    expect(panel.node.querySelector(`[data-key="${PHONE.id}"]`)).toBeNull();
    panel.dispose();
  });

  it('removes a key with the password alone from a session opened with a key', async () => {
    const api = new ServerLikeApi();
    api.current = status({ webauthn_keys: 2, session_factor: 'webauthn' });
    api.keys = [KEY, PHONE];
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-remove', PHONE.id);
    expect(labels(panel)).toEqual(['Password']);
    panel.dispose();
  });

  it("shows a refused removal's message as it is", async () => {
    const api = new ServerLikeApi();
    api.current = status({ enrolled: false, webauthn_keys: 1 });
    api.keys = [KEY];
    const message = 'This key is your only second factor: link the app or add another key first.';
    api.removeResult = () => Promise.reject(new TwoFactorError('conflict', message, 409));
    const panel = await openPanel(api, withWebAuthn);
    click(panel, 'key-remove', KEY.id);
    await submit(panel, { password: 'hunter2' });
    expect(panel.node.querySelector('[role="alert"]')?.textContent).toBe(message);
    expect(panel.node.querySelector(`[data-key="${KEY.id}"]`)).not.toBeNull();
    panel.dispose();
  });
});
