// The mount page's drag and drop (templates/dicomnet/mount.html): drop an image on a slot
// to move it there (a filled slot swaps). Each drop is one POST to the mount's change URL
// with the CSRF token in X-CSRFToken; the answer is the mount's grid, swapped in place.
// The buttons (rotate, flip, take out) are plain forms and work without this script.

const root = document.getElementById("mount-root");

function csrfToken() {
  const input = root.querySelector("input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
}

async function post(fields) {
  const body = new URLSearchParams(fields);
  const response = await fetch(root.dataset.changeUrl, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
    body,
    credentials: "same-origin",
  });
  root.innerHTML = await response.text();
  root.dataset.state = response.ok ? "saved" : "error";
}

function bind() {
  if (root.dataset.editable !== "1") return;
  root.addEventListener("dragstart", (event) => {
    const image = event.target.closest("[data-instance]");
    if (!image) return;
    event.dataTransfer.setData("text/plain", image.dataset.instance);
    event.dataTransfer.effectAllowed = "move";
    image.closest(".mount-slot")?.classList.add("dragging");
  });
  root.addEventListener("dragend", () => {
    root.querySelectorAll(".dragging, .drop-target").forEach((el) => {
      el.classList.remove("dragging", "drop-target");
    });
  });
  root.addEventListener("dragover", (event) => {
    const slot = event.target.closest(".mount-slot");
    if (!slot) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    root.querySelectorAll(".drop-target").forEach((el) => el !== slot && el.classList.remove("drop-target"));
    slot.classList.add("drop-target");
  });
  root.addEventListener("drop", (event) => {
    const slot = event.target.closest(".mount-slot");
    const instance = event.dataTransfer.getData("text/plain");
    if (!slot || !instance) return;
    event.preventDefault();
    root.dataset.state = "saving";
    post({ action: "move", instance, position: slot.dataset.position });
  });
}

if (root) bind();
