// The chart's "compare side by side" (templates/patients/detail.html): two images are
// compared, so ticking a third unticks the one ticked first; the button waits for two.
// Without this script the form still works: the server asks for exactly two.
const form = document.getElementById("compare-form");
const button = document.getElementById("compare-open");
const picked = [];

function update() {
  if (button) button.disabled = picked.length !== 2;
  for (const box of form.querySelectorAll("input[name=image]")) {
    box.closest(".thumb-cell")?.classList.toggle("picked", box.checked);
  }
}

if (form) {
  for (const box of form.querySelectorAll("input[name=image]")) {
    if (box.checked) picked.push(box);
  }
  form.addEventListener("change", (event) => {
    const box = event.target;
    if (box.name !== "image") return;
    const at = picked.indexOf(box);
    if (at >= 0) picked.splice(at, 1);
    if (box.checked) {
      picked.push(box);
      if (picked.length > 2) picked.shift().checked = false;
    }
    update();
  });
  update();
}
