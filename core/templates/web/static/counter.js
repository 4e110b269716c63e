// Counts what is typed in each field with a length limit (data-limit), beside its hint, so a
// long text is cut before it is sent, not refused after. The limit is also in the hint, for
// pages without scripts.
document.querySelectorAll("[data-limit]").forEach((field) => {
  const limit = Number(field.dataset.limit);
  const count = document.createElement("span");
  count.className = "counter";
  count.setAttribute("aria-hidden", "true");
  field.insertAdjacentElement("afterend", count);
  const update = () => {
    const used = field.value.length;
    count.textContent = `${used.toLocaleString()} of ${limit.toLocaleString()} characters`;
    count.classList.toggle("over", used > limit);
  };
  field.addEventListener("input", update);
  update();
});
