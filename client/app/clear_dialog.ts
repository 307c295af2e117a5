/**
 * "Clear local data" asks first when the server has not confirmed every edit: a modal
 * `<dialog>` says how many edits would be lost, and nothing is deleted unless the
 * person confirms. With every edit synced it clears at once.
 *
 * @module
 */

import { editCount } from "./status_line.ts";

/**
 * Resolves true when local data may be cleared: at once when `unsynced` is 0, else after
 * the person confirms in the dialog (false on Cancel or Escape).
 */
export function confirmClear(
  dialog: HTMLDialogElement,
  unsynced: number,
): Promise<boolean> {
  if (unsynced <= 0) return Promise.resolve(true);
  const message = dialog.querySelector<HTMLElement>("[data-role=message]")!;
  message.textContent = `${editCount(unsynced)} made here ${
    unsynced === 1 ? "has" : "have"
  } not reached the server yet. Clearing local data now deletes ${
    unsynced === 1 ? "it" : "them"
  } for good.`;
  const confirm = dialog.querySelector<HTMLButtonElement>(
    "button[value=clear]",
  )!;
  confirm.textContent = `Delete ${editCount(unsynced)} and clear`;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "clear"),
      { once: true },
    );
    dialog.showModal();
    // Cancel is the safe default for a keyboard user.
    dialog.querySelector<HTMLButtonElement>("button[value=cancel]")?.focus();
  });
}
