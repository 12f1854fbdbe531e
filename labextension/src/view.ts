/**
 * The panel's DOM, rebuilt from the state on every change: whatever a step showed (the QR code, the key,
 * recovery codes) is gone from the document as soon as the state moves on. Plain DOM, so Jest's jsdom can
 * check exactly that.
 */

import { Credentials, WebAuthnCredential } from './api';
import { addKeyNeedsCode, PanelController, PanelState, Purpose, Step } from './state';

type Child = Node | string | null | false;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const { dataset, role, ...rest } = props;
  const el = Object.assign(document.createElement(tag), rest);
  if (role) {
    el.setAttribute('role', role); // not every DOM reflects the role property
  }
  Object.assign(el.dataset, dataset ?? {});
  el.append(...children.filter((c): c is Node | string => c !== null && c !== false));
  return el;
}

const PURPOSES: Record<Purpose, { title: string; submit: string; help: string }> = {
  enroll: {
    title: 'Link a device',
    submit: 'Continue',
    help: 'Enter your password. A QR code and key for your authenticator app are shown once.'
  },
  relink: {
    title: 'Re-link a device',
    submit: 'Continue',
    help:
      'Enter your password and a code from your current device (or a recovery code). The current device ' +
      'keeps working until the new one is confirmed; then every other session is signed out.'
  },
  recovery: {
    title: 'New recovery codes',
    submit: 'Generate new codes',
    help: 'Enter your password and a current code (or a recovery code). Every earlier recovery code stops working.'
  }
};

export function formatTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toLocaleString();
}

/** A key's time (Unix seconds, or an ISO 8601 string) in a `<time>` element; null is "never". */
function timeElement(value: number | string | null): Node | string {
  if (value === null || value === undefined || value === '') {
    return 'never';
  }
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) {
    return String(value);
  }
  return h('time', { dateTime: date.toISOString() }, date.toLocaleString());
}

/** The QR code from the server as an inline SVG element: parsed, never given to a URL or `innerHTML`. */
function qrElement(svg: string): Element | null {
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
  const root = doc.documentElement;
  if (root.nodeName.toLowerCase() !== 'svg' || doc.querySelector('parsererror')) {
    return null;
  }
  doc.querySelectorAll('script, foreignObject').forEach(node => node.remove());
  return document.importNode(root, true);
}

function field(label: string, input: HTMLInputElement): HTMLLabelElement {
  return h('label', { className: 'jp-2fa-field' }, h('span', {}, label), input);
}

function passwordInput(): HTMLInputElement {
  return h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
}

function codeInput(name: string, autocomplete: AutoFill = 'one-time-code'): HTMLInputElement {
  return h('input', { type: 'text', name, autocomplete, required: true, spellcheck: false, inputMode: 'text' });
}

function keyNameInput(value = ''): HTMLInputElement {
  return h('input', { type: 'text', name: 'name', autocomplete: 'off', required: true, value });
}

/** Reads the form's fields and empties every one of them at once, whatever the answer will be. */
function take(form: HTMLFormElement): Record<string, string> {
  const values: Record<string, string> = {};
  form.querySelectorAll('input').forEach(input => {
    values[input.name] = input.value;
    input.value = '';
  });
  return values;
}

export class PanelView {
  constructor(
    readonly root: HTMLElement,
    private readonly controller: PanelController
  ) {
    root.classList.add('jp-2fa-panel');
  }

  render(state: PanelState): void {
    const blocks: Child[] = [
      h('h2', {}, 'Two-Factor Authentication'),
      this.statusBlock(state),
      state.notice ? h('p', { className: 'jp-2fa-notice', role: 'status' }, state.notice) : null,
      state.error ? h('p', { className: 'jp-2fa-error', role: 'alert' }, this.errorText(state)) : null,
      this.stepBlock(state.step, state)
    ];
    this.root.replaceChildren(...blocks.filter((b): b is Node => !!b));
    this.root.setAttribute('aria-busy', String(state.busy));
    this.root.querySelectorAll<HTMLButtonElement | HTMLInputElement>('button, input').forEach(el => {
      el.disabled = state.busy;
    });
    this.root.querySelector<HTMLInputElement>('form input')?.focus();
  }

  private errorText(state: PanelState): string {
    const error = state.error!;
    return error.retryAfter ? `${error.message} (retry in ${Math.ceil(error.retryAfter)} s)` : error.message;
  }

  private statusBlock(state: PanelState): Node | null {
    const status = state.status;
    if (!status) {
      return null;
    }
    const device = status.enrolled ? 'linked' : status.pending ? 'pending confirmation' : 'not linked';
    const rows: [string, string, string][] = [
      ['Account', status.username, 'username'],
      ['Authenticator app', device + (status.enrolled && status.pending ? ' (a re-link is pending)' : ''), 'device'],
      ['Passkeys and security keys', String(status.webauthn_keys ?? 0), 'webauthn-keys'],
      ['Recovery codes left', String(status.recovery_codes_left), 'codes-left'],
      ['Policy', status.policy + (status.optional_until ? ` until ${status.optional_until}` : ''), 'policy']
    ];
    if (status.locked) {
      rows.push(['Locked', 'yes: too many failed attempts', 'locked']);
    }
    if (status.session_expires_at) {
      rows.push(['Session expires at', formatTime(status.session_expires_at), 'expires']);
    }
    if (this.controller.hubMode) {
      rows.push(['Managed by', 'JupyterHub (your hub password)', 'hub']);
    }
    return h(
      'dl',
      { className: 'jp-2fa-status' },
      ...rows.flatMap(([term, value, key]) => [h('dt', {}, term), h('dd', { dataset: { field: key } }, value)])
    );
  }

  private stepBlock(step: Step, state: PanelState): Node {
    switch (step.name) {
      case 'loading':
        return h('p', {}, 'Loading…');
      case 'ended':
        return h('p', {}, 'Log in again to manage your second factor.');
      case 'overview':
        return this.overview(state);
      case 'credentials':
        return this.credentials(step.purpose);
      case 'confirm':
        return this.confirmation(step.provisioning);
      case 'codes':
        return this.codes(step.codes);
      case 'key-add':
        return this.addKey(state, step.waiting);
      case 'key-rename':
        return this.renameKey(step.key);
      case 'key-remove':
        return this.removeKey(step.key);
    }
  }

  /** `name` is the accessible name when the visible label alone is ambiguous (it starts with the label). */
  private button(
    label: string,
    action: string,
    onClick: () => void,
    primary = false,
    name?: string
  ): HTMLButtonElement {
    const className = `jp-Button jp-mod-styled ${primary ? 'jp-mod-accept' : 'jp-mod-reject'}`;
    const button = h('button', { type: 'button', className, onclick: onClick, dataset: { action } }, label);
    if (name) {
      button.setAttribute('aria-label', name);
    }
    return button;
  }

  private overview(state: PanelState): Node {
    const status = state.status;
    const c = this.controller;
    const canLink = status !== null && status.policy !== 'cli-only' && !status.locked;
    // Beside keys, the app is linked with a recovery code on the 2FA page, or here from a session opened with a key.
    const keysOnly = status !== null && !status.enrolled && status.webauthn_keys > 0;
    const appLinkable = canLink && (!keysOnly || status.session_factor === 'webauthn');
    const hasFactor = status !== null && (status.enrolled || status.webauthn_keys > 0);
    const actions = [
      appLinkable && !status.enrolled && this.button('Link a device', 'enroll', () => c.open('enroll'), true),
      canLink && status.enrolled && this.button('Re-link a device', 'relink', () => c.open('relink')),
      hasFactor && this.button('New recovery codes', 'recovery', () => c.open('recovery')),
      status?.pending && this.button('Finish or cancel the pending link', 'pending', () => c.finishPending()),
      this.button('Refresh', 'refresh', () => void c.refresh())
    ];
    const cliOnly = status?.policy === 'cli-only' && h('p', {}, 'Devices are linked by an administrator here.');
    return h(
      'div',
      {},
      h('div', { className: 'jp-2fa-actions' }, cliOnly, ...actions.filter((a): a is HTMLButtonElement => !!a)),
      this.keys(state, canLink)
    );
  }

  /** The keys' list with rename and remove, and adding one where this page can (else why not, plainly). */
  private keys(state: PanelState, canAdd: boolean): Node {
    const c = this.controller;
    const keys = state.keys;
    let list: Node;
    if (keys === null) {
      list = h('p', {}, state.busy ? 'Loading…' : 'The list of keys is not available.');
    } else if (keys.length === 0) {
      list = h('p', {}, 'No passkeys or security keys yet.');
    } else {
      const header = ['Name', 'Added', 'Last used', 'Actions'].map(text => h('th', { scope: 'col' }, text));
      const rows = keys.map(key =>
        h(
          'tr',
          { dataset: { key: key.id } },
          h('th', { scope: 'row' }, key.name),
          h('td', {}, timeElement(key.created_at)),
          h('td', {}, timeElement(key.last_used_at)),
          h(
            'td',
            {},
            h(
              'div',
              { className: 'jp-2fa-key-actions' },
              this.button('Rename', 'key-rename', () => c.openRename(key), false, `Rename ${key.name}`),
              this.button('Remove', 'key-remove', () => c.openRemove(key), false, `Remove ${key.name}`)
            )
          )
        )
      );
      list = h(
        'table',
        { className: 'jp-2fa-keys-table' },
        h('thead', {}, h('tr', {}, ...header)),
        h('tbody', {}, ...rows)
      );
    }
    const unavailable = c.passkeysUnavailable;
    const add = unavailable
      ? h('p', { className: 'jp-2fa-unavailable', dataset: { field: 'passkeys-unavailable' } }, unavailable)
      : canAdd &&
        h(
          'div',
          { className: 'jp-2fa-actions' },
          this.button('Add a passkey or security key', 'key-add', () => c.openAddKey())
        );
    return h(
      'section',
      { className: 'jp-2fa-keys' },
      h('h3', {}, 'Passkeys and security keys'),
      h(
        'p',
        {},
        'A passkey or security key logs you in with a touch, a PIN or your device unlock, instead of a code from the app.'
      ),
      list,
      add
    );
  }

  private form(
    className: string,
    inputs: HTMLLabelElement[],
    submit: string,
    onSubmit: (v: Record<string, string>) => void,
    ...extra: Node[]
  ): HTMLFormElement {
    const form = h(
      'form',
      { className },
      ...inputs,
      h(
        'div',
        { className: 'jp-2fa-actions' },
        h('button', { type: 'submit', className: 'jp-Button jp-mod-styled jp-mod-accept' }, submit),
        ...extra
      )
    );
    form.addEventListener('submit', event => {
      event.preventDefault();
      onSubmit(take(form));
    });
    return form;
  }

  private credentials(purpose: Purpose): Node {
    const text = PURPOSES[purpose];
    const inputs = [field('Password', passwordInput())];
    if (purpose !== 'enroll') {
      inputs.push(field('Current code or recovery code', codeInput('otp')));
    }
    const submit = (values: Record<string, string>): void => {
      void this.controller.submitCredentials({ password: values.password, otp: values.otp });
    };
    return h(
      'section',
      { dataset: { step: purpose } },
      h('h3', {}, text.title),
      h('p', {}, text.help),
      this.form(
        'jp-2fa-credentials',
        inputs,
        text.submit,
        submit,
        this.button('Back', 'back', () => this.controller.back())
      )
    );
  }

  private confirmation(provisioning: { qr_svg: string; manual_key: string; expires_at: number | null } | null): Node {
    const c = this.controller;
    const hub = c.hubMode;
    const inputs = [field('Code from the new device', codeInput('code'))];
    if (hub) {
      inputs.push(field('Password', passwordInput()));
    }
    const credentials = (values: Record<string, string>): Credentials | undefined =>
      hub ? { password: values.password ?? '' } : undefined;
    const form = this.form(
      'jp-2fa-confirm',
      inputs,
      'Link device',
      values => void c.confirm(values.code, credentials(values))
    );
    const cancel = this.button('Cancel enrollment', 'cancel', () => void c.cancelPending(credentials(take(form))));
    form.querySelector('.jp-2fa-actions')!.append(cancel);
    const scan = provisioning
      ? [
          h('p', {}, 'Scan this QR code with your authenticator app, or type the key. It is shown only now.'),
          h('div', { className: 'jp-2fa-qr' }, qrElement(provisioning.qr_svg) ?? 'QR code unavailable: type the key.'),
          h('p', {}, 'Key: ', h('code', { className: 'jp-2fa-key' }, provisioning.manual_key)),
          provisioning.expires_at ? h('p', {}, `Confirm before ${formatTime(provisioning.expires_at)}.`) : null
        ]
      : [h('p', {}, 'A device link is pending. Enter the code the device you scanned shows now, or cancel.')];
    return h('section', { dataset: { step: 'confirm' } }, h('h3', {}, 'Confirm the new device'), ...scan, form);
  }

  private addKey(state: PanelState, waiting: boolean): Node {
    const c = this.controller;
    const status = state.status;
    const needsCode = addKeyNeedsCode(status);
    const inputs = [field('Name of the key', keyNameInput()), field('Password', passwordInput())];
    if (needsCode) {
      inputs.push(field(status?.enrolled ? 'Current code or recovery code' : 'Recovery code', codeInput('otp')));
    }
    const submit = (values: Record<string, string>): void => {
      void c.addKey(values.name.trim(), { password: values.password, otp: values.otp });
    };
    return h(
      'section',
      { dataset: { step: 'key-add' } },
      h('h3', {}, 'Add a passkey or security key'),
      h(
        'p',
        {},
        'Name the key so you can tell it apart later, and enter your password' +
          (needsCode ? ' and a code from your authenticator app (or a recovery code)' : '') +
          ". Then follow your browser's prompt."
      ),
      waiting
        ? h(
            'p',
            { className: 'jp-2fa-prompt', role: 'status' },
            "Follow your browser's prompt: touch your security key, or unlock your passkey on this device or your phone."
          )
        : null,
      this.form(
        'jp-2fa-key-add',
        inputs,
        'Continue',
        submit,
        this.button('Back', 'back', () => c.back())
      )
    );
  }

  private renameKey(key: WebAuthnCredential): Node {
    const c = this.controller;
    const hub = c.hubMode;
    const inputs = [field('New name', keyNameInput(key.name))];
    if (hub) {
      inputs.push(field('Password', passwordInput()));
    }
    const submit = (values: Record<string, string>): void => {
      void c.renameKey(values.name.trim(), hub ? { password: values.password ?? '' } : undefined);
    };
    return h(
      'section',
      { dataset: { step: 'key-rename' } },
      h('h3', {}, `Rename “${key.name}”`),
      this.form(
        'jp-2fa-key-rename',
        inputs,
        'Rename',
        submit,
        this.button('Back', 'back', () => c.back())
      )
    );
  }

  private removeKey(key: WebAuthnCredential): Node {
    const c = this.controller;
    const status = c.state.status;
    const inputs = [field('Password', passwordInput())];
    if (addKeyNeedsCode(status)) {
      // the same proof as adding a key: with the password alone, a phisher could strip the account's keys
      inputs.push(field(status?.enrolled ? 'Current code or recovery code' : 'Recovery code', codeInput('otp')));
    }
    const submit = (values: Record<string, string>): void => {
      void c.removeKey({ password: values.password, otp: values.otp });
    };
    return h(
      'section',
      { dataset: { step: 'key-remove' } },
      h('h3', {}, `Remove “${key.name}”`),
      h('p', {}, 'You can no longer log in with this key once it is removed. Confirm it is you to remove it.'),
      this.form(
        'jp-2fa-key-remove',
        inputs,
        'Remove key',
        submit,
        this.button('Back', 'back', () => c.back())
      )
    );
  }

  private codes(codes: string[]): Node {
    return h(
      'section',
      { dataset: { step: 'codes' } },
      h('h3', {}, 'Recovery codes'),
      h(
        'p',
        {},
        'Save these codes somewhere safe. Each works once, instead of a code from your device. They are shown only now.'
      ),
      h('ol', { className: 'jp-2fa-recovery-codes' }, ...codes.map(code => h('li', {}, h('code', {}, code)))),
      this.button('I have saved them', 'done', () => this.controller.acknowledge(), true)
    );
  }
}
