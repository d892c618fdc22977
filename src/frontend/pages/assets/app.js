/**
 * Enhancements every page loads: key validation on the "open by key" forms, upload times in the
 * reader's own time zone, and the image page's dimensions (known only once the image decodes).
 * Everything works without it; it only answers sooner and reads better.
 */
import { bindKeyField } from './key-field.js';

for (const form of document.querySelectorAll('form[data-open-key]')) {
  const input = form.querySelector('[data-key-field]');
  if (!input) continue;
  const check = bindKeyField(input);
  form.addEventListener('submit', (event) => {
    if (!check()) event.preventDefault();
  });
}

for (const time of document.querySelectorAll('time[data-local]')) {
  const date = new Date(time.dateTime);
  if (Number.isNaN(date.getTime())) continue;
  time.title = date.toISOString();
  time.textContent = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

const image = document.querySelector('img[data-image]');
if (image) {
  const dimensions = document.querySelector('[data-dimensions]');
  const showDimensions = () => {
    if (dimensions && image.naturalWidth > 0) {
      dimensions.textContent = `${image.naturalWidth} × ${image.naturalHeight} px`;
    }
  };
  const showFallback = () => {
    image.hidden = true;
    document.querySelector('.image-fallback')?.removeAttribute('hidden');
  };
  if (image.complete) {
    if (image.naturalWidth > 0) showDimensions();
    else showFallback();
  }
  image.addEventListener('load', showDimensions);
  image.addEventListener('error', showFallback);
}

// A thumbnail the server cannot make (an image the transformer refuses): a placeholder instead.
for (const thumb of document.querySelectorAll('img[data-thumb]')) {
  const fallback = () => {
    thumb.hidden = true;
    thumb.parentElement?.classList.add('no-preview');
  };
  if (thumb.complete && thumb.naturalWidth === 0 && thumb.currentSrc) fallback();
  thumb.addEventListener('error', fallback);
}
