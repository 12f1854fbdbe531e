/** The panel as a Lumino widget: owns a controller and a view; closing it drops every secret it held. */

import { Widget } from '@lumino/widgets';

import { PanelController } from './state';
import { PanelView } from './view';

export class TwoFactorPanel extends Widget {
  private readonly view: PanelView;
  private readonly unsubscribe: () => void;

  constructor(readonly controller: PanelController) {
    super();
    this.id = 'jupyter-2fa-panel';
    this.title.label = 'Two-Factor Authentication';
    this.title.closable = true;
    this.addClass('jp-2fa-widget');
    this.view = new PanelView(this.node, controller);
    this.unsubscribe = controller.subscribe(state => this.view.render(state));
    this.view.render(controller.state);
    void controller.refresh();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.unsubscribe();
    this.controller.dispose(); // the state forgets the provisioning and codes...
    this.node.replaceChildren(); // ...and the document forgets what showed them
    super.dispose();
  }

  protected onCloseRequest(msg: Parameters<Widget['onCloseRequest']>[0]): void {
    super.onCloseRequest(msg);
    this.dispose();
  }
}
