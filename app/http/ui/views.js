// Portal views: the images table, an image's layers, its actions, and the engine tools.
"use strict";
(() => {
  const { el, api, bytes } = Berth;
  const PAGE = 25;
  const state = { images: [], unique: new Map(), sort: "created", desc: true, page: 0, selected: null };
  const $ = (id) => document.getElementById(id);
  const tagsOf = (image) => image.repo_tags.filter((t) => t !== "<none>:<none>");
  const nameOf = (image) => tagsOf(image)[0] || image.id.slice(7, 19);
  const guard = (fn) => (...args) => Promise.resolve(fn(...args)).catch(Berth.showError);

  // ---- images table: filtered, sorted and paged here, so 2,000 rows render 25 at a time
  // One reload at a time: asks made meanwhile (live events, actions) make one more after it.
  let loading = null;
  let again = false;
  function refreshImages() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        await loadImages();
      } while (again);
    })().finally(() => { loading = null; });
    return loading;
  }

  async function loadImages() {
    const [{ images }, usage] = await Promise.all([api("GET", "/v1/images"), api("GET", "/v1/usage")]);
    state.images = images;
    state.unique.clear();
    Berth.drawUsage(usage);
    renderImages();
  }

  function visible() {
    const needle = $("filter").value.trim().toLowerCase();
    const dangling = $("only-dangling").checked;
    const key = {
      tags: (i) => tagsOf(i).join(" ") || "~", id: (i) => i.id, created: (i) => i.created,
      size: (i) => i.size, containers: (i) => i.containers, unique: (i) => state.unique.get(i.id) ?? -1,
    }[state.sort];
    return state.images
      .filter((i) => !dangling || !tagsOf(i).length)
      .filter((i) => !needle || i.id.includes(needle) || tagsOf(i).some((t) => t.toLowerCase().includes(needle)))
      .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (state.desc ? -1 : 1));
  }

  function renderImages() {
    const rows = visible();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const shown = rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
    $("image-count").textContent = `(${rows.length} of ${state.images.length})`;
    $("page").textContent = `page ${state.page + 1} / ${pages}`;
    for (const th of document.querySelectorAll("#images th[data-sort]")) {
      th.className = th.dataset.sort === state.sort ? (state.desc ? "desc" : "asc") : "";
    }
    $("images").tBodies[0].replaceChildren(...shown.map(imageRow));
    fillUniqueSizes(shown);
  }

  function imageRow(image) {
    const tags = tagsOf(image);
    const actions = [el("button", { type: "button", onclick: guard(() => showLayers(image)) }, "Layers")];
    if (Berth.can("write")) actions.push(el("button", { type: "button", onclick: () => tagForm(image) }, "Tag"));
    if (Berth.can("delete")) actions.push(el("button", { type: "button", onclick: guard(() => deleteChoice(image)) }, "Delete"));
    if (Berth.can("push") && tags.length) actions.push(el("button", { type: "button", onclick: () => pushForm(image) }, "Push"));
    actions.push(el("button", { type: "button", onclick: guard(() => save(image)) }, "Save"));
    const cls = [tags.length ? "" : "dangling", state.selected === image.id ? "selected" : ""].join(" ").trim();
    return el("tr", { class: cls, "data-id": image.id },
      el("td", {}, tags.length ? tags.join(", ") : el("em", {}, "dangling")),
      el("td", {}, el("code", {}, image.id.slice(7, 19))),
      el("td", {}, (image.created || "").replace("T", " ").slice(0, 19)),
      el("td", { class: "num" }, bytes(image.size)),
      el("td", { class: "num unique" }, bytes(state.unique.get(image.id))),
      el("td", { class: "num" }, String(image.containers)),
      el("td", {}, actions));
  }

  // Unique size needs each image's layers: asked for the rows on screen only, two at a time.
  async function fillUniqueSizes(shown) {
    const todo = shown.filter((i) => !state.unique.has(i.id));
    const worker = async () => {
      for (let image = todo.shift(); image; image = todo.shift()) {
        try {
          const layers = await api("GET", `/v1/images/${image.id}/layers`);
          state.unique.set(image.id, layers.unique_size);
          const cell = document.querySelector(`tr[data-id="${image.id}"] td.unique`);
          if (cell) cell.textContent = bytes(layers.unique_size);
        } catch {
          state.unique.set(image.id, null);
        }
      }
    };
    await Promise.all([worker(), worker()]);
  }

  // ---- one image's layers, bottom-up, with who shares each (aggregated past five names)
  async function showLayers(image) {
    const data = await api("GET", `/v1/images/${image.id}/layers`);
    state.selected = image.id;
    $("detail-view").hidden = false;
    $("detail-name").textContent = nameOf(image);
    $("detail-summary").textContent = `${data.layers.length} layers, ${bytes(data.size)}: ` +
      `${bytes(data.unique_size)} unique, ${bytes(data.shared_size)} shared with other images.`;
    Berth.drawLayers(data.layers);
    const rows = data.layers.map((layer) => {
      // The API names a bounded few (tagged first) and counts them all in shared_count.
      const names = layer.shared_with.map((s) => (s.repo_tags[0] || s.id.slice(7, 19)));
      const count = layer.shared_count ?? names.length;
      const shared = count
        ? `${count} image${count > 1 ? "s" : ""}: ${names.slice(0, 5).join(", ")}` +
          (count > 5 ? ` and ${count - 5} more` : "")
        : "none (unique)";
      return el("tr", {}, el("td", {}, String(layer.index)), el("td", { class: "num" }, bytes(layer.size)),
        el("td", {}, el("code", {}, (layer.created_by || "").slice(0, 120))),
        el("td", { class: "shared-list" }, shared));
    });
    $("layers").tBodies[0].replaceChildren(...rows);
    renderImages();
  }

  // ---- actions, each an API call; its problem document is shown as written
  function panel(title, ...body) {
    $("action-view").hidden = false;
    $("action-title").textContent = title;
    $("action-body").replaceChildren(...body);
    $("action-view").scrollIntoView({ block: "nearest" });
  }

  function form(fields, label, submit) {
    const inputs = fields.map(([name, placeholder, value = ""]) => el("input", { name, placeholder, value, required: true }));
    return el("form", { onsubmit: (event) => { event.preventDefault(); guard(submit)(...inputs.map((i) => i.value.trim())); } },
      inputs, el("button", { type: "submit" }, label));
  }

  function tagForm(image) {
    panel(`Tag ${nameOf(image)}`, form([["repository", "team/app"], ["tag", "tag", "latest"]], "Tag",
      async (repository, tag) => {
        const result = await api("POST", `/v1/images/${image.id}/tags`, { body: { repository, tag } });
        panel("Tagged", el("p", {}, `${result.reference} → ${result.id.slice(7, 19)}`));
        await refreshImages();
      }));
  }

  // Several names: choose one to remove (the image stays) or the whole image (all names).
  function deleteChoice(image) {
    const tags = tagsOf(image);
    if (tags.length < 2) return deletePreview(tags[0] || image.id);
    const pick = (ref, label) => el("li", {}, el("button", { type: "button", onclick: guard(() => deletePreview(ref)) }, label));
    panel(`Delete what of ${image.id.slice(7, 19)}?`, el("ul", {},
      tags.map((t) => pick(t, `Delete the name ${t}`)), pick(image.id, "Delete the image (every name)")));
  }

  // The dry run first, always; the real delete repeats exactly what was previewed.
  async function deletePreview(ref, force = false) {
    const list = (title, items) => el("div", {}, el("strong", {}, `${title} (${items.length})`),
      el("ul", {}, items.slice(0, 20).map((i) => el("li", {}, el("code", {}, i)))));
    const params = force ? { force: true } : {};
    try {
      const plan = await api("DELETE", `/v1/images/${ref}`, { params: { ...params, dry_run: true } });
      panel(`Delete ${ref}${force ? " (force)" : ""}?`, el("p", { class: "muted" }, "Preview: nothing has been deleted yet."),
        list("would untag", plan.untagged), list("would delete images", plan.deleted),
        list("would free layers", plan.deleted_layers),
        el("button", { type: "button", id: "confirm-delete", onclick: guard(async () => {
          const done = await api("DELETE", `/v1/images/${ref}`, { params });
          panel(`Deleted ${ref}`, list("untagged", done.untagged), list("deleted", done.deleted));
          await refreshImages();
        }) }, "Delete"));
    } catch (error) {
      if (error.status !== 409) throw error;
      const p = error.problem;
      panel(`Cannot delete ${ref}`, el("p", {}, `${p.code}: ${p.detail}`),
        el("ul", {}, (p.containers || []).map((c) => el("li", {}, `container ${c.name || c.id} (${c.state})`))),
        p.force_outcome ? el("p", { class: "muted" }, `With force: ${p.force_outcome}`) : "",
        p.force_would_help && !force
          ? el("button", { type: "button", onclick: guard(() => deletePreview(ref, true)) }, "Preview with force")
          : "");
    }
  }

  function pushForm(image) {
    panel(`Push ${nameOf(image)}`, form([["target", "host:port/repo:tag", tagsOf(image)[0]]], "Push",
      async (target) => {
        const result = await api("POST", `/v1/images/${tagsOf(image)[0]}/push`, { body: { target } });
        panel("Pushed", el("p", {}, `${result.reference} ${result.digest || ""}`));
      }));
  }

  // Save: the archive is fetched with the token (a plain link could not carry it).
  async function save(image) {
    const ref = tagsOf(image)[0] || image.id;
    const response = await fetch(Berth.url(`/v1/images/${ref}/archive`), { headers: Berth.headers() });
    if (!response.ok) throw new Berth.ApiError(response.status, await Berth.problemOf(response));
    const name = /filename="?([^";]+)/.exec(response.headers.get("Content-Disposition") || "")?.[1] || "image.tar";
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  // ---- engine tools: pull with live progress, prune with preview, load by upload, registries
  async function pull(reference) {
    const bar = $("pull-progress");
    const status = $("pull-status");
    bar.hidden = false;
    status.textContent = "starting…";
    const response = await fetch(Berth.url("/v1/images/pull"), {
      method: "POST", body: JSON.stringify({ reference }),
      headers: Berth.headers({ "Content-Type": "application/json", Accept: "application/x-ndjson" }),
    });
    if (!response.ok) throw new Berth.ApiError(response.status, await Berth.problemOf(response));
    const layers = new Map();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines.filter(Boolean)) {
        const event = JSON.parse(line);
        if (event.error) throw new Berth.ApiError(event.error.status, event.error);
        if (event.result) {
          bar.value = bar.max;
          status.textContent = `pulled ${event.result.reference} ${event.result.digest || ""}`;
          await refreshImages();
          return;
        }
        if (event.layer && event.total) layers.set(event.layer, [event.current || 0, event.total]);
        const [current, total] = [...layers.values()].reduce((a, b) => [a[0] + b[0], a[1] + b[1]], [0, 0]);
        bar.max = total || 1;
        bar.value = current;
        status.textContent = `${event.status || ""} ${event.layer || ""} ${bytes(current)} / ${bytes(total)}`;
      }
    }
  }

  async function prunePreview() {
    const dangling = !$("prune-all").checked;
    const plan = await api("POST", "/v1/images/prune", { body: { dangling, dry_run: true } });
    const go = el("button", { type: "button", onclick: guard(async () => {
      const done = await api("POST", "/v1/images/prune", { body: { dangling, dry_run: false } });
      $("prune-result").textContent = `Deleted ${done.deleted.length} images, freed ${bytes(done.space_reclaimed)}.`;
      await refreshImages();
    }) }, "Prune now");
    $("prune-result").replaceChildren(el("p", {},
      `Would delete ${plan.deleted.length} images and untag ${plan.untagged.length}, freeing ` +
      `${bytes(plan.space_reclaimed)}; ${plan.skipped.length} kept (in use).`), go);
  }

  // Load: XMLHttpRequest, because fetch reports no upload progress.
  function load(file) {
    const bar = $("load-progress");
    const status = $("load-status");
    bar.hidden = false;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", Berth.url("/v1/archives"));
    xhr.setRequestHeader("Authorization", `Bearer ${Berth.token()}`);
    xhr.setRequestHeader("Content-Type", /\.(tgz|gz)$/.test(file.name) ? "application/gzip" : "application/x-tar");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { bar.max = e.total || 1; bar.value = e.loaded; status.textContent = `uploading ${bytes(e.loaded)} / ${bytes(e.total)}`; };
    xhr.upload.onload = () => { status.textContent = "the engine is loading…"; };
    xhr.onload = () => {
      let body;
      try { body = JSON.parse(xhr.responseText); } catch { body = { detail: xhr.responseText }; }
      if (xhr.status >= 400) { status.textContent = "failed"; Berth.showError(new Berth.ApiError(xhr.status, body)); return; }
      status.textContent = `loaded ${(body.loaded || []).join(", ")}`;
      refreshImages().catch(Berth.showError);
    };
    xhr.onerror = () => { status.textContent = "upload failed"; };
    xhr.send(file);
  }

  async function browse(registry, repository) {
    const box = $("registry-result");
    const base = `/v1/registries/${encodeURIComponent(registry)}/repositories`;
    if (!repository) {
      const page = await api("GET", base, { engine: false });
      box.replaceChildren(el("ul", {}, page.repositories.map((r) =>
        el("li", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); guard(browse)(registry, r); } }, r)))));
      return;
    }
    const page = await api("GET", `${base}/${repository}/tags`, { engine: false });
    box.replaceChildren(el("strong", {}, repository), el("ul", {}, page.tags.map((t) => el("li", {},
      `${t.tag} `, el("code", {}, (t.digest || "").slice(0, 19)), " ",
      Berth.can("write") ? el("button", { type: "button", onclick: guard(() => pull(`${page.registry}/${repository}:${t.tag}`)) }, "Pull") : ""))));
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("filter").addEventListener("input", () => { state.page = 0; renderImages(); });
    $("only-dangling").addEventListener("change", () => { state.page = 0; renderImages(); });
    $("prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); renderImages(); });
    $("next").addEventListener("click", () => { state.page += 1; renderImages(); });
    for (const th of document.querySelectorAll("#images th[data-sort]")) {
      th.addEventListener("click", () => {
        state.desc = state.sort === th.dataset.sort ? !state.desc : false;
        state.sort = th.dataset.sort;
        renderImages();
      });
    }
    $("pull-form").addEventListener("submit", (e) => { e.preventDefault(); guard(pull)($("pull-ref").value.trim()); });
    $("prune-preview").addEventListener("click", guard(prunePreview));
    $("load-file").addEventListener("change", (e) => e.target.files[0] && load(e.target.files[0]));
    const zone = $("dropzone");
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); if (e.dataTransfer.files[0]) load(e.dataTransfer.files[0]); });
    $("registry-form").addEventListener("submit", (e) => { e.preventDefault(); guard(browse)($("registry").value.trim()); });
  });

  Berth.views.images = { refresh: () => refreshImages().catch(Berth.showError) };
})();
