/**
 * The upload form: preview of the chosen image, key and size checks before sending, then a
 * multipart POST /api/upload with fetch and a clear result (a link to the image, or the
 * server's own message). fetch reports no upload progress, so "uploading" is an indeterminate bar.
 *
 * Messages are built with textContent, never innerHTML: they may quote the key or the server.
 */
import { bindKeyField } from './key-field.js';

const form = document.querySelector('form[data-upload]');
if (form) setUpUploadForm(form);

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0).replace(/\.0$/, '')} ${units[unit]}`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setUpUploadForm(form) {
  const keyInput = form.querySelector('#key');
  const fileInput = form.querySelector('#file');
  const dropzone = form.querySelector('.dropzone');
  const fileError = form.querySelector('#file-error');
  const preview = form.querySelector('.preview');
  const previewImage = preview.querySelector('img');
  const previewNone = preview.querySelector('.preview-none');
  const submit = form.querySelector('button[type="submit"]');
  const status = form.querySelector('.status');
  const maxBytes = Number(form.dataset.maxBytes);
  const checkKey = bindKeyField(keyInput);
  let previewUrl;

  const showFileError = (message) => {
    fileError.textContent = message ?? '';
    fileError.hidden = !message;
  };

  const fileProblem = (file) => {
    if (!file) return 'Choose an image to upload.';
    if (file.size === 0) return 'This file is empty.';
    if (maxBytes > 0 && file.size > maxBytes) {
      return `This file is ${formatBytes(file.size)}; the largest upload is ${formatBytes(maxBytes)}.`;
    }
    return undefined;
  };

  const showStatus = (kind, title, detail, action) => {
    status.className = `status ${kind}`;
    status.replaceChildren(element('p', 'status-title', title));
    if (detail) status.append(element('p', 'status-detail', detail));
    if (kind === 'busy') status.append(element('div', 'progress'));
    if (action) {
      const actions = element('div', 'actions');
      const link = element('a', 'button primary', action.label);
      link.href = action.href;
      actions.append(link);
      status.append(actions);
    }
    status.hidden = false;
  };

  const clearStatus = () => {
    status.hidden = true;
    status.replaceChildren();
  };

  const showPreview = () => {
    const file = fileInput.files?.[0];
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = undefined;
    clearStatus();
    if (!file) {
      preview.hidden = true;
      showFileError(undefined);
      return;
    }
    previewUrl = URL.createObjectURL(file);
    previewImage.hidden = false;
    previewNone.hidden = true;
    previewImage.src = previewUrl;
    preview.querySelector('.preview-name').textContent = file.name;
    preview.querySelector('.preview-meta').textContent =
      `${file.type || 'unknown type'} · ${formatBytes(file.size)}`;
    preview.hidden = false;
    const notImage = file.type && !file.type.startsWith('image/');
    showFileError(
      fileProblem(file) ??
        (notImage
          ? 'This does not look like an image; the server will check its bytes.'
          : undefined),
    );
  };

  fileInput.addEventListener('change', showPreview);
  keyInput.addEventListener('input', clearStatus);
  // No preview only means this browser cannot decode the file; the server judges its bytes.
  previewImage.addEventListener('error', () => {
    previewImage.hidden = true;
    previewNone.hidden = false;
  });

  for (const type of ['dragenter', 'dragover']) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    dropzone.addEventListener(type, () => dropzone.classList.remove('dragging'));
  }
  dropzone.addEventListener('drop', (event) => {
    event.preventDefault();
    if (!event.dataTransfer?.files.length) return;
    fileInput.files = event.dataTransfer.files;
    showPreview();
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const keyOk = checkKey();
    const file = fileInput.files?.[0];
    const problem = fileProblem(file);
    showFileError(problem);
    if (!keyOk || problem) return;

    const key = keyInput.value;
    // The key goes first so the server knows it before the file's bytes arrive.
    const body = new FormData();
    body.append('key', key);
    body.append('file', file, file.name);

    submit.disabled = true;
    submit.textContent = 'Uploading…';
    form.setAttribute('aria-busy', 'true');
    showStatus('busy', 'Uploading…', `${file.name} (${formatBytes(file.size)}) as “${key}”`);
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        body,
        headers: { accept: 'application/json' },
      });
      const answer = await response.json().catch(() => undefined);
      if (response.ok && answer?.success === 'true') {
        const storedKey = typeof answer.key === 'string' ? answer.key : key;
        showStatus('success', 'Image uploaded', `“${storedKey}” now holds ${file.name}.`, {
          label: 'View the image →',
          href: `/image/${encodeURIComponent(storedKey)}`,
        });
      } else {
        const message =
          answer?.error?.message ??
          `The server answered ${response.status} ${response.statusText}.`;
        showStatus('error', 'Upload failed', message);
      }
    } catch {
      showStatus(
        'error',
        'Upload failed',
        'Could not reach pixpool. Check your connection and try again.',
      );
    } finally {
      submit.disabled = false;
      submit.textContent = 'Upload';
      form.removeAttribute('aria-busy');
    }
  });
}
