// jsdom lacks DragEvent, which @lumino/widgets (the panel's base class) touches when it loads.
if (typeof window !== 'undefined' && !('DragEvent' in window)) {
  (window as unknown as Record<string, unknown>).DragEvent = class DragEvent extends MouseEvent {};
}
