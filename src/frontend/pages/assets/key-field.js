/**
 * Live validation of a key input: the rule's message appears under the field as the user types
 * (after the first keystroke, so an empty form does not open with an error) and on submit.
 * The message element is the one whose id ends in "-error" among the input's aria-describedby.
 */
import { keyProblem } from './key-rule.js';

/** Binds `input`; returns `check()`, which shows the problem (if any) and says whether it is valid. */
export function bindKeyField(input) {
  const errorId = (input.getAttribute('aria-describedby') ?? '')
    .split(/\s+/)
    .find((id) => id.endsWith('-error'));
  const message = errorId ? document.getElementById(errorId) : null;

  const show = (problem) => {
    input.setCustomValidity(problem ?? '');
    if (problem) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    if (message) {
      message.textContent = problem ?? '';
      message.hidden = !problem;
    }
  };

  input.addEventListener('input', () =>
    show(input.value === '' ? undefined : keyProblem(input.value)),
  );

  return () => {
    const problem = keyProblem(input.value);
    show(problem);
    if (problem) input.focus();
    return !problem;
  };
}
