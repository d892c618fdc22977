/**
 * The image page's variants: each URL field shows the absolute URL (the page holds paths) and
 * copies it; the builder makes the URL of the chosen width, height, fit and format.
 */
const section = document.querySelector('[data-variants]');
if (section) {
  const key = section.dataset.key ?? '';
  const status = section.querySelector('[data-copied]');
  const absolute = (path) => new URL(path, location.origin).href;

  for (const field of section.querySelectorAll('[data-variant-url]')) {
    field.value = absolute(field.value);
    field.addEventListener('focus', () => field.select());
  }

  for (const button of section.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const field = button.parentElement?.querySelector('[data-variant-url]');
      if (!field) return;
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = 'Copied';
      } catch {
        // No clipboard permission (or plain http off localhost): the URL stays selected to copy.
        button.textContent = 'Selected';
      }
      if (status) status.textContent = `${field.value} is ready to paste.`;
      setTimeout(() => {
        button.textContent = 'Copy';
      }, 1500);
    });
  }

  const builder = section.querySelector('[data-variant-builder]');
  const built = section.querySelector('[data-built]');
  const link = section.querySelector('[data-built-link]');
  if (builder && built && link) {
    const fit = builder.elements.namedItem('fit');
    const update = () => {
      const query = new URLSearchParams();
      const w = builder.elements.namedItem('w').value;
      const h = builder.elements.namedItem('h').value;
      if (w) query.set('w', w);
      if (h) query.set('h', h);
      // fit means something only with both sizes; the server refuses it otherwise.
      fit.disabled = !(w && h);
      if (w && h) query.set('fit', fit.value);
      const format = builder.elements.namedItem('format').value;
      if (format) query.set('format', format);
      const text = query.toString();
      const path = `/images/${encodeURIComponent(key)}${text ? `?${text}` : ''}`;
      built.value = absolute(path);
      link.href = path;
    };
    builder.addEventListener('change', update);
    builder.addEventListener('submit', (event) => event.preventDefault());
    update();
  }
}
