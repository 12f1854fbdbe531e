/** The status bar item: 2FA state and the session's remaining time; a click opens the panel. */

import { Widget } from '@lumino/widgets';

import { SessionSnapshot, statusText } from './session';
import { formatTime } from './view';

export class SessionStatusItem extends Widget {
  constructor(onClick: () => void) {
    super();
    this.addClass('jp-2fa-statusbar');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', onClick);
    this.render(null);
  }

  render(snapshot: SessionSnapshot | null): void {
    const current = snapshot ?? { status: null, remaining: null, ended: false };
    this.node.textContent = statusText(current);
    const expires = current.status?.session_expires_at;
    this.node.title =
      expires && !current.ended
        ? `Two-factor authentication. This session ends at ${formatTime(expires)}.`
        : 'Two-factor authentication';
    this.toggleClass('jp-2fa-mod-warning', current.ended || (current.remaining !== null && current.remaining < 600));
  }
}
