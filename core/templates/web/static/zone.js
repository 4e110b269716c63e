// Tells a sign-up (or a colleague joining) the browser's time zone, so every moment in their
// pages and emails is written in it from the first; they can change it in Settings.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
document.querySelectorAll("input[data-zone-guess]").forEach((field) => {
  if (!field.value && zone) field.value = zone;
});
