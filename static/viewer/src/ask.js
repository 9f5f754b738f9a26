// The viewer's one question box (a <dialog> of the template): a note's text, a known length.
export function ask(label, { initial = "", validate = () => "" } = {}) {
  const dialog = document.getElementById("ask");
  const input = document.getElementById("ask-input");
  const error = document.getElementById("ask-error");
  document.getElementById("ask-label").textContent = label;
  input.value = initial;
  error.textContent = "";
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener("close", onClose);
      dialog.removeEventListener("submit", onSubmit);
      resolve(dialog.returnValue === "ok" ? input.value.trim() : null);
    };
    const onSubmit = (event) => {
      if (event.submitter?.value !== "ok") return;
      const problem = validate(input.value.trim());
      if (problem) {
        event.preventDefault();
        error.textContent = problem;
      }
    };
    dialog.addEventListener("close", onClose);
    dialog.addEventListener("submit", onSubmit);
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}
