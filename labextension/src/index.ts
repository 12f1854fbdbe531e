/**
 * jupyter-2fa's JupyterLab (and Notebook 7) plugin: the "Two-Factor Authentication" panel (Settings menu,
 * command palette), the status bar item, the warning before the session ends and the dialog once it has.
 */

import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { Status, Transport, TwoFactorApi, TwoFactorError } from './api';
import { expiryMessage, loginUrl } from './expiry';
import { SessionMonitor } from './session';
import { PanelController } from './state';
import { SessionStatusItem } from './statusbar';
import { passkeySupport } from './webauthn';
import { TwoFactorPanel } from './widget';

const PLUGIN_ID = 'jupyter-2fa:plugin';
const OPEN = 'jupyter-2fa:open';

/** Defaults of the user settings in schema/plugin.json (also used before the settings load). */
const DEFAULTS = { pollIntervalSeconds: 30, warnBeforeMinutes: 5 };

interface Mode {
  api: TwoFactorApi;
  /** Where the login page is: the server's, or the hub's. */
  loginBase: string;
  /** This browser session, as the monitor sees it. */
  probe: () => Promise<Status | null>;
}

/** Single server: the gate's API with the session cookie and XSRF header. Hub: the hub's API, Basic auth. */
function mode(): Mode {
  const settings = ServerConnection.makeSettings();
  const serverTransport: Transport = (url, init) => ServerConnection.makeRequest(url, init, settings);
  const hubPrefix = PageConfig.getOption('hubPrefix');
  const hubUser = PageConfig.getOption('hubUser');
  if (!hubPrefix || !hubUser) {
    const api = new TwoFactorApi({ apiUrl: URLExt.join(settings.baseUrl, '2fa/api/'), transport: serverTransport });
    return { api, loginBase: settings.baseUrl, probe: () => api.status() };
  }
  const api = new TwoFactorApi({
    apiUrl: URLExt.join(hubPrefix, '2fa/api/'),
    transport: (url, init) => fetch(url, init), // never the server's token: the hub refuses tokens here
    hubUser
  });
  const probe = async (): Promise<Status | null> => {
    // The single-user server's own session (the hub's OAuth cookie) is what unsaved work depends on.
    const me = await serverTransport(URLExt.join(settings.baseUrl, 'api/me'), { method: 'GET' }).catch(() => null);
    if (me && (me.status === 401 || me.status === 403)) {
      throw new TwoFactorError('session', 'Your session has ended.', me.status);
    }
    return api.status().catch(() => null);
  };
  return { api, loginBase: hubPrefix, probe };
}

/** Open documents with unsaved changes, by path (any main-area widget with a dirty document context). */
function unsavedDocuments(app: JupyterFrontEnd): string[] {
  const paths: string[] = [];
  for (const widget of app.shell.widgets('main')) {
    const context = (widget as { context?: { path?: string; model?: { dirty?: boolean } } }).context;
    if (context?.model?.dirty && context.path) {
      paths.push(context.path);
    }
  }
  return paths;
}

/** Never reloads by itself: with unsaved documents it offers a new tab for the login, then saving here. */
async function showExpiryDialog(url: string, unsaved: string[]): Promise<void> {
  const here = Dialog.okButton({ label: 'Log in here', className: 'jp-2fa-login-here' });
  const newTab = Dialog.okButton({ label: 'Log in in a new tab', className: 'jp-2fa-login-tab' });
  const buttons = unsaved.length ? [Dialog.cancelButton({ label: 'Stay' }), here, newTab] : [here];
  const result = await showDialog({
    title: 'Session ended',
    body: expiryMessage(unsaved),
    buttons,
    defaultButton: buttons.length - 1,
    hasClose: false
  });
  if (result.button.label === newTab.label) {
    window.open(url, '_blank', 'noopener');
  } else if (result.button.label === here.label) {
    window.location.assign(url);
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Two-factor authentication: panel, status bar item and session expiry.',
  autoStart: true,
  optional: [ICommandPalette, IStatusBar, ISettingRegistry, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    labShell: ILabShell | null
  ) => {
    const { api, loginBase, probe } = mode();
    let panel: TwoFactorPanel | null = null;
    let expiryShown = false;

    const sessionEnded = (): void => {
      if (expiryShown) {
        return;
      }
      expiryShown = true;
      monitor?.end();
      panel?.controller.dispatch({
        type: 'failed',
        error: { kind: 'session', message: 'Your session has ended.', retryAfter: null }
      });
      void showExpiryDialog(loginUrl(loginBase, window.location), unsavedDocuments(app));
    };

    const item = new SessionStatusItem(() => void app.commands.execute(OPEN));
    let monitor: SessionMonitor | null = null;

    // (Re)started with the user's settings once they load; the defaults run until then.
    const restart = (values: typeof DEFAULTS): void => {
      monitor?.stop();
      monitor = new SessionMonitor({
        probe,
        pollSeconds: values.pollIntervalSeconds,
        warnSeconds: values.warnBeforeMinutes * 60,
        onChange: item.render.bind(item),
        onWarning: (remaining: number) => {
          Notification.warning(
            `Your session ends in ${Math.ceil(remaining / 60)} minutes. Save your work now; then log in again.`,
            {
              autoClose: false,
              actions: [{ label: 'Save all', callback: () => void app.commands.execute('docmanager:save-all') }]
            }
          );
        },
        onEnded: sessionEnded
      });
      if (!expiryShown) {
        monitor.start();
      }
    };

    app.commands.addCommand(OPEN, {
      label: 'Two-Factor Authentication',
      caption: 'Link a device, re-link, passkeys and security keys, new recovery codes, session status',
      execute: () => {
        if (!panel || panel.isDisposed) {
          const controller = new PanelController(api, sessionEnded, passkeySupport(window));
          // A change can move the session (a confirmed link re-issues the cookie): re-read it after one.
          controller.subscribe(state => state.notice !== null && !state.busy && void monitor?.check());
          panel = new TwoFactorPanel(controller);
          app.shell.add(panel, labShell ? 'main' : 'right');
        }
        app.shell.activateById(panel.id);
      }
    });
    palette?.addItem({ command: OPEN, category: 'Security' });
    statusBar?.registerStatusItem(PLUGIN_ID, { item, align: 'left', rank: 900 });

    document.addEventListener(
      'visibilitychange',
      () => document.visibilityState === 'visible' && void monitor?.check()
    );
    restart(DEFAULTS);
    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const read = (): typeof DEFAULTS => ({ ...DEFAULTS, ...(settings.composite as Partial<typeof DEFAULTS>) });
          restart(read());
          settings.changed.connect(() => restart(read()));
        })
        .catch(() => undefined); // the defaults keep running
    }
  }
};

export default plugin;
