// The chat webview's script: it places the transcript HTML the extension
// rendered (escaped there, see chat/transcript.ts), keeps the controls in
// step with the extension's state, and sends the user's actions back as
// messages. It holds no conversation of its own: the extension is the
// source of truth, so a reloaded view just asks for the state again.
// @ts-check
(function () {
  // eslint-disable-next-line no-undef
  const vscode = acquireVsCodeApi();
  const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const transcript = $('transcript');
  const empty = $('empty');
  const input = /** @type {HTMLTextAreaElement} */ ($('input'));
  const model = /** @type {HTMLSelectElement} */ ($('model'));
  const send = /** @type {HTMLButtonElement} */ ($('send'));
  const stop = /** @type {HTMLButtonElement} */ ($('stop'));
  const attachments = $('attachments');
  let busy = false;

  const saved = vscode.getState();
  if (saved && typeof saved.draft === 'string') {
    input.value = saved.draft;
  }

  function post(message) {
    vscode.postMessage(message);
  }

  function submit() {
    const text = input.value.trim();
    if (text === '' || busy) {
      return;
    }
    post({ type: 'send', text });
    input.value = '';
    vscode.setState({ draft: '' });
  }

  function setModels(models, selected) {
    model.textContent = '';
    if (models.length === 0) {
      const option = document.createElement('option');
      option.value = '';
      option.textContent = 'No models installed';
      model.appendChild(option);
      model.disabled = true;
      return;
    }
    model.disabled = false;
    for (const m of models) {
      const option = document.createElement('option');
      option.value = m.id;
      option.textContent = m.label;
      option.title = m.detail || m.label;
      option.selected = m.id === selected;
      model.appendChild(option);
    }
  }

  function setAttachments(list) {
    attachments.textContent = '';
    list.forEach((a, i) => {
      const chip = document.createElement('span');
      chip.className = 'chip';
      chip.textContent = a.label;
      const remove = document.createElement('button');
      remove.className = 'chip-remove';
      remove.textContent = '×';
      remove.title = 'Remove ' + a.label;
      remove.setAttribute('aria-label', 'Remove ' + a.label);
      remove.addEventListener('click', () => post({ type: 'removeAttachment', index: i }));
      chip.appendChild(remove);
      attachments.appendChild(chip);
    });
  }

  function setBusy(value) {
    busy = value;
    send.hidden = value;
    stop.hidden = !value;
  }

  /** Shows `text` in `element`, hiding it when there is none. */
  function setText(element, text) {
    element.textContent = typeof text === 'string' ? text : '';
    element.hidden = element.textContent === '';
  }

  function scrollToEnd() {
    transcript.scrollTop = transcript.scrollHeight;
  }

  window.addEventListener('message', (event) => {
    const m = event.data;
    if (!m || typeof m.type !== 'string') {
      return;
    }
    if (m.type === 'state') {
      transcript.innerHTML = m.transcript;
      empty.hidden = m.transcript !== '';
      setModels(m.models, m.selected);
      setAttachments(m.attachments);
      setBusy(m.busy);
      setText($('title'), m.title);
      setText($('noticeText'), m.notice);
      $('notice').hidden = $('noticeText').hidden;
      setText($('noticeAction'), m.noticeAction);
      /** @type {HTMLButtonElement} */ ($('delete')).disabled = !m.canDelete;
      scrollToEnd();
    } else if (m.type === 'turn') {
      // Streaming: replace just the turn that grows.
      const old = transcript.querySelector('[data-turn="' + Number(m.index) + '"]');
      const holder = document.createElement('div');
      holder.innerHTML = m.html;
      const fresh = holder.firstElementChild;
      if (old && fresh) {
        old.replaceWith(fresh);
      } else if (fresh) {
        transcript.appendChild(fresh);
      }
      empty.hidden = true;
      scrollToEnd();
    } else if (m.type === 'focus') {
      input.focus();
    }
  });

  transcript.addEventListener('click', (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    const button = target.closest('button[data-action]');
    if (!button) {
      return;
    }
    const action = button.getAttribute('data-action');
    if (action === 'copy' || action === 'insert') {
      post({ type: action, message: Number(button.getAttribute('data-message')), block: Number(button.getAttribute('data-block')) });
    } else if (action === 'fix' || action === 'retry') {
      post({ type: action, turn: Number(button.getAttribute('data-turn')) });
    }
  });

  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', () => vscode.setState({ draft: input.value }));
  send.addEventListener('click', submit);
  stop.addEventListener('click', () => post({ type: 'stop' }));
  model.addEventListener('change', () => post({ type: 'selectModel', id: model.value }));
  $('new').addEventListener('click', () => post({ type: 'clear' }));
  $('history').addEventListener('click', () => post({ type: 'history' }));
  $('delete').addEventListener('click', () => post({ type: 'delete' }));
  $('noticeAction').addEventListener('click', () => post({ type: 'noticeAction' }));
  $('attachSelection').addEventListener('click', () => post({ type: 'attachSelection' }));
  $('attachFile').addEventListener('click', () => post({ type: 'attachFile' }));

  post({ type: 'ready' });
})();
