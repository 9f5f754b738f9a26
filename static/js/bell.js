// The notifications' bell (templates/patients/bell.html): htmx redraws it every 20 s, but not
// while its dropdown is open (the redraw would close it under the reader's pointer); a click
// outside the open dropdown closes it.
document.addEventListener("htmx:beforeRequest", (event) => {
  const bell = document.getElementById("bell");
  if (bell && event.detail.elt === bell && bell.querySelector("details[open]")) {
    event.preventDefault();
  }
});

document.addEventListener("click", (event) => {
  const menu = document.querySelector("#bell details[open]");
  if (menu && !menu.contains(event.target)) {
    menu.open = false;
  }
});
