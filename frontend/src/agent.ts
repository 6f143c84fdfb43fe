// The agents' call console (templates/agentdesk/console.html, /ws/agent/, agentdesk/consumers.py).
//
// The server sends {"type": "hello"} on connect, {"type": "event", "event": {...}} for every
// push of the switchboard (kinds state, offer, connected, ended, hold; `seq` +1 per push), and
// {"type": "reply", "id", "command", "ok", "message"[, "snapshot"][, "timeout"]} for every
// command we send ({"command", "id", ...args}). On connect, and whenever a push's seq is not
// the last + 1, we ask for a snapshot ({"command": "snapshot"}) and hold pushes until it comes
// (then apply those newer than it). A reply with `timeout` means the switchboard did not answer
// in time: the page says "switchboard offline" and asks for a snapshot every few seconds until
// it answers. The socket reconnects with backoff (1 s doubling to 30 s, jittered); close codes
// 4401/4403/4404 are final.

interface Contact {
  name?: string;
  vip?: boolean;
  [key: string]: unknown;
}

interface CallInfo {
  call_id: string;
  tenant?: string;
  tenant_name?: string;
  caller?: string;
  caller_masked?: boolean;
  queue?: string;
  contact?: Contact | null;
  on_hold?: boolean;
  masked?: boolean;
  recording?: boolean;
  transferred_by?: string | null;
  warm?: boolean;
  consulting?: boolean;
  conference?: boolean;
  [key: string]: unknown;
}

interface AgentEvent extends Partial<CallInfo> {
  kind: "state" | "offer" | "connected" | "ended" | "hold" | "recording";
  seq: number;
  state?: string;
  reason?: string | null;
  since?: number;
  on?: boolean;
}

interface Snapshot {
  state?: string;
  reason?: string | null;
  since?: number;
  call?: CallInfo | null;
  seq: number;
}

interface ServerMessage {
  type: "hello" | "event" | "reply";
  event?: AgentEvent;
  id?: number | string | null;
  command?: string | null;
  ok?: boolean;
  message?: string;
  snapshot?: Snapshot;
  timeout?: boolean;
  agent_id?: string;
}

interface ClientInfo {
  tenant: string;
  name: string;
  mask_caller: boolean;
  queues: { id: string; name: string }[];
  agents: { id: string; name: string }[];
  dispositions: { code: string; label: string }[];
}

interface Labels {
  states: Record<string, string>;
  connecting: string;
  live: string;
  reconnecting: string;
  offline: string;
  forbidden: string;
  not_your_call: string;
  failed: string;
  on_hold: string;
  recording_paused: string;
  transferred_by: string;
  vip: string;
  unknown_caller: string;
  saved: string;
  save_failed: string;
  saving: string;
  choose_code: string;
  queues: string;
  agents: string;
}

const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404]);
const OFFLINE_RETRY_MS = 4_000;
const DISPOSITION_RETRIES = 6;
const LAST_CALL_KEY = "ccp-agent-last-call";

function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const headers = document.body.getAttribute("hx-headers");
  try {
    return headers ? (JSON.parse(headers)["X-CSRFToken"] as string) : "";
  } catch {
    return "";
  }
}

class AgentConsole {
  private socket: WebSocket | null = null;
  private backoffMs = 1000;
  private stopped = false;
  private nextId = 1;
  private seq = -1; // unknown until a snapshot
  private syncing = false;
  private held: AgentEvent[] = [];
  private offline = false;
  private offlineTimer: number | undefined;
  private state = "";
  private reason: string | null = null;
  private since: number | null = null;
  private offer: CallInfo | null = null;
  private call: CallInfo | null = null;
  private lastCall: CallInfo | null = AgentConsole.storedLastCall(); // the call being wrapped up
  private clients: Record<string, Promise<ClientInfo | null>> = {};
  snapshots = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly labels: Labels,
  ) {}

  start(): void {
    this.root.addEventListener("click", (event) => this.onClick(event));
    this.el<HTMLFormElement>("#ad-wrapup")?.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.finishWrapUp();
    });
    this.connect();
  }

  // -- socket -------------------------------------------------------------------------------

  private connect(): void {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const path = this.root.dataset.wsPath ?? "/ws/agent/";
    const socket = new WebSocket(`${scheme}//${location.host}${path}`);
    this.socket = socket;
    this.status(this.labels.connecting);
    socket.addEventListener("message", (event) => {
      let message: ServerMessage;
      try {
        message = JSON.parse(String(event.data)) as ServerMessage;
      } catch {
        return;
      }
      this.receive(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.root.dataset.connected = "0";
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.stopped = true;
        this.status(this.labels.forbidden);
        return;
      }
      this.status(this.labels.reconnecting);
      const delay = Math.min(this.backoffMs, 30_000) * (0.8 + Math.random() * 0.4);
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
      window.setTimeout(() => this.connect(), delay);
    });
  }

  /** For tests and debugging: drop the connection as a network failure would. */
  dropConnection(): void {
    this.socket?.close();
  }

  private send(command: string, args: Record<string, unknown> = {}): boolean {
    const socket = this.socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify({ ...args, command, id: this.nextId++ }));
    return true;
  }

  private requestSnapshot(): void {
    if (this.send("snapshot")) {
      this.syncing = true;
    }
  }

  // -- messages -----------------------------------------------------------------------------

  private receive(message: ServerMessage): void {
    if (message.type === "hello") {
      this.backoffMs = 1000;
      this.root.dataset.connected = "1";
      this.status(this.labels.live);
      this.held = [];
      this.requestSnapshot();
    } else if (message.type === "event" && message.event) {
      this.onEvent(message.event);
    } else if (message.type === "reply") {
      this.onReply(message);
    }
  }

  private onEvent(event: AgentEvent): void {
    if (this.syncing) {
      this.held.push(event);
      return;
    }
    if (typeof event.seq === "number" && event.seq <= this.seq) return; // already in hand
    if (typeof event.seq !== "number" || event.seq !== this.seq + 1) {
      this.held = [event];
      this.requestSnapshot(); // a gap: something was lost
      return;
    }
    this.apply(event);
  }

  private onReply(reply: ServerMessage): void {
    if (reply.timeout) {
      this.setOffline(true);
      if (reply.command === "snapshot") this.syncing = false;
      this.feedback(this.labels.offline, true);
      return;
    }
    this.setOffline(false);
    if (reply.command === "snapshot") {
      if (reply.ok && reply.snapshot) this.loadSnapshot(reply.snapshot);
      else this.syncing = false;
      return;
    }
    if (reply.command === "wrap_up_done" && !reply.ok) {
      return; // the wrap-up ends by its timer anyway; the disposition is what mattered
    }
    if (reply.ok) {
      this.feedback("", false);
    } else {
      this.feedback(this.labels.failed.replace("%(message)s", reply.message ?? ""), true);
    }
  }

  private loadSnapshot(snapshot: Snapshot): void {
    this.snapshots += 1;
    this.root.dataset.snapshots = String(this.snapshots);
    this.syncing = false;
    this.seq = snapshot.seq;
    this.state = snapshot.state ?? this.state;
    this.reason = snapshot.reason ?? null;
    this.since = snapshot.since ?? null;
    const call = snapshot.call ?? null;
    this.offer = null;
    this.call = null;
    if (call) {
      const kind = typeof call.kind === "string" ? call.kind : "";
      if (kind === "offer" || (!kind && this.state === "offered")) this.offer = call;
      else if (this.state === "wrap_up") this.setLastCall(call);
      else this.call = { ...call, on_hold: Boolean(call.on_hold), masked: Boolean(call.masked) };
      if (call.tenant) void this.client(call.tenant);
    } else if (this.state !== "wrap_up") {
      this.setLastCall(null);
    }
    if (this.lastCall?.tenant) void this.client(this.lastCall.tenant);
    const held = this.held.sort((a, b) => a.seq - b.seq);
    this.held = [];
    for (const event of held) {
      if (event.seq <= this.seq) continue;
      if (event.seq !== this.seq + 1) {
        this.requestSnapshot();
        break;
      }
      this.apply(event);
    }
    this.render();
  }

  private apply(event: AgentEvent): void {
    this.seq = event.seq;
    switch (event.kind) {
      case "state":
        this.state = event.state ?? this.state;
        this.reason = event.reason ?? null;
        this.since = event.since ?? null;
        if (this.state !== "offered") this.offer = null;
        break;
      case "offer":
        this.offer = event as CallInfo;
        if (event.tenant) void this.client(event.tenant);
        break;
      case "connected": {
        const offered = this.offer?.call_id === event.call_id ? this.offer : null;
        this.offer = null;
        this.call = {
          tenant_name: offered?.tenant_name,
          ...(event as CallInfo),
          // A card pushed again (conference begun or ended) keeps the call's flags.
          on_hold: Boolean(event.on_hold),
          masked: Boolean(event.masked),
          recording: Boolean((event as CallInfo).recording),
        };
        if (event.tenant) void this.client(event.tenant);
        break;
      }
      case "hold":
        if (this.call && this.call.call_id === event.call_id) this.call.on_hold = Boolean(event.on);
        break;
      case "recording":
        if (this.call && this.call.call_id === event.call_id) this.call.recording = Boolean(event.on);
        break;
      case "ended":
        if (this.call && this.call.call_id === event.call_id) {
          this.setLastCall(this.call);
          this.call = null;
        }
        if (this.offer && this.offer.call_id === event.call_id) this.offer = null;
        break;
    }
    this.render();
  }

  /** The call in wrap-up survives a page reload (the snapshot no longer names it). */
  private setLastCall(call: CallInfo | null): void {
    this.lastCall = call;
    try {
      if (call) window.sessionStorage.setItem(LAST_CALL_KEY, JSON.stringify(call));
      else window.sessionStorage.removeItem(LAST_CALL_KEY);
    } catch {
      /* storage unavailable: only a reload loses it */
    }
  }

  private static storedLastCall(): CallInfo | null {
    try {
      const raw = window.sessionStorage.getItem(LAST_CALL_KEY);
      return raw ? (JSON.parse(raw) as CallInfo) : null;
    } catch {
      return null;
    }
  }

  // -- client companies ---------------------------------------------------------------------

  private client(tenant: string): Promise<ClientInfo | null> {
    if (!(tenant in this.clients)) {
      const base = this.root.dataset.clientUrl ?? "/agent/clients/";
      this.clients[tenant] = fetch(`${base}${encodeURIComponent(tenant)}/`, {
        credentials: "same-origin",
      })
        .then((response) => (response.ok ? (response.json() as Promise<ClientInfo>) : null))
        .catch(() => null)
        .then((info) => {
          if (info === null) delete this.clients[tenant];
          else this.loaded[tenant] = info;
          this.render();
          return info;
        });
    }
    return this.clients[tenant];
  }

  private loaded: Record<string, ClientInfo> = {};

  // -- actions ------------------------------------------------------------------------------

  private onClick(event: Event): void {
    const target = event.target;
    if (!(target instanceof HTMLElement)) return;
    const button = target.closest<HTMLButtonElement>("button[data-command]");
    if (!button) return;
    const command = button.dataset.command ?? "";
    const args: Record<string, unknown> = {};
    if (command === "wrap_up_done") {
      // nothing to dispose of (no call in hand): just end the wrap-up
    } else if (command === "state") {
      args.state = button.dataset.state;
      if (button.dataset.state === "break") {
        args.reason = this.el<HTMLSelectElement>("#ad-break-reason")?.value ?? "";
      }
    } else {
      if (!this.call) return;
      args.call_id = this.call.call_id;
      if (command === "escalate") args.mode = button.dataset.mode;
      if (command === "escalate" && button.dataset.mode === "warm") this.call.warm = true;
      if (command === "transfer") {
        const value = this.el<HTMLSelectElement>("#ad-transfer-target")?.value ?? "";
        const [kind, id] = [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)];
        if (!id) return;
        if (kind === "queue") args.queue_id = id;
        else args.to_agent = id;
      }
      if (command === "mask" || command === "unmask") this.call.masked = command === "mask";
    }
    if (!this.send(command, args)) {
      this.feedback(this.labels.reconnecting, true);
      return;
    }
    this.render();
  }

  private async finishWrapUp(): Promise<void> {
    const call = this.lastCall;
    const code = this.el<HTMLSelectElement>("#ad-disposition")?.value ?? "";
    const note = this.el<HTMLTextAreaElement>("#ad-note")?.value ?? "";
    if (!code) {
      this.feedback(this.labels.choose_code, true);
      return;
    }
    if (call && call.tenant) {
      this.feedback(this.labels.saving, false);
      const problem = await this.postDisposition(call, code, note);
      if (problem !== null) {
        this.feedback(this.labels.save_failed.replace("%(message)s", problem), true);
        return;
      }
      this.feedback(this.labels.saved, false);
    }
    this.send("wrap_up_done", call ? { call_id: call.call_id } : {});
    this.setLastCall(null);
    const form = this.el<HTMLFormElement>("#ad-wrapup");
    form?.reset();
    this.render();
  }

  /** POST the disposition; a call the switchboard has not recorded yet (409) is retried. */
  private async postDisposition(call: CallInfo, code: string, note: string): Promise<string | null> {
    const url = this.root.dataset.dispositionUrl ?? "/agent/dispositions/";
    let wait = 500;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ tenant: call.tenant, call_id: call.call_id, code, note }),
        });
      } catch {
        return this.labels.reconnecting;
      }
      if (response.ok) return null;
      let message = String(response.status);
      try {
        message = ((await response.json()) as { message?: string }).message ?? message;
      } catch {
        /* not JSON */
      }
      if (response.status !== 409 || attempt >= DISPOSITION_RETRIES) return message;
      await new Promise((resolve) => window.setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 4000);
    }
  }

  // -- state marker -------------------------------------------------------------------------

  private setOffline(offline: boolean): void {
    if (this.offline === offline) return;
    this.offline = offline;
    this.root.dataset.offline = offline ? "1" : "0";
    window.clearInterval(this.offlineTimer);
    if (offline) {
      this.status(this.labels.offline);
      this.offlineTimer = window.setInterval(() => {
        if (!this.syncing) this.requestSnapshot();
      }, OFFLINE_RETRY_MS);
    } else if (this.socket !== null) {
      this.status(this.labels.live);
    }
  }

  private status(text: string): void {
    this.text("#ad-status", text);
  }

  private feedback(text: string, bad: boolean): void {
    const el = this.el<HTMLElement>("#ad-feedback");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("bad", bad);
  }

  // -- rendering ----------------------------------------------------------------------------

  private caller(call: CallInfo): string {
    return call.caller ? call.caller : this.labels.unknown_caller;
  }

  private tenantName(call: CallInfo): string {
    const info = call.tenant ? this.loadedInfo(call.tenant) : null;
    return call.tenant_name || info?.name || call.tenant || "";
  }

  private queueName(call: CallInfo): string {
    const info = call.tenant ? this.loadedInfo(call.tenant) : null;
    return info?.queues.find((q) => q.id === call.queue)?.name ?? call.queue ?? "";
  }

  private agentName(call: CallInfo, agentId: string): string {
    const info = call.tenant ? this.loadedInfo(call.tenant) : null;
    return info?.agents.find((a) => a.id === agentId)?.name ?? agentId;
  }

  private loadedInfo(tenant: string): ClientInfo | null {
    return this.loaded[tenant] ?? null;
  }

  private render(): void {
    const root = this.root;
    root.dataset.seq = String(this.seq);
    root.dataset.state = this.state;
    root.dataset.call = this.call?.call_id ?? "";
    const stateText = this.labels.states[this.state] ?? (this.state || "—");
    this.text("#ad-state", this.reason ? `${stateText} (${this.reason})` : stateText);
    this.text(
      "#ad-state-since",
      this.since ? new Date(this.since * 1000).toLocaleTimeString() : "",
    );

    const offer = this.offer;
    this.show("#ad-offer", offer !== null);
    if (offer) {
      this.text("#ad-offer-tenant", this.tenantName(offer));
      this.text("#ad-offer-queue", this.queueName(offer));
      this.text("#ad-offer-caller", this.caller(offer));
    }

    const call = this.call;
    this.show("#ad-call", call !== null);
    if (call) {
      this.text("#ad-call-tenant", this.tenantName(call));
      this.text("#ad-call-caller", this.caller(call));
      this.text("#ad-call-queue", this.queueName(call));
      const contact = call.contact ?? null;
      this.text("#ad-call-contact", contact?.name ? String(contact.name) : "—");
      this.show("#ad-call-vip", Boolean(contact?.vip));
      this.show("#ad-hold-flag", Boolean(call.on_hold));
      this.show("#ad-hold", !call.on_hold);
      this.show("#ad-unhold", Boolean(call.on_hold));
      this.show("#ad-mask-flag", Boolean(call.masked));
      this.show("#ad-mask", !call.masked);
      this.show("#ad-unmask", Boolean(call.masked));
      this.show("#ad-rec-flag", Boolean(call.recording) && !call.masked);
      this.show("#ad-record", !call.recording);
      const from = call.transferred_by ? this.agentName(call, call.transferred_by) : "";
      this.text("#ad-xfer-flag", from ? this.labels.transferred_by.replace("%(agent)s", from) : "");
      this.show("#ad-xfer-flag", Boolean(from));
      // Consulting the second line: complete the transfer, or bring everyone together;
      // in the conference: leave it to the caller and the second line.
      const consulting = Boolean(call.consulting || call.warm) && !call.conference;
      this.show("#ad-complete", consulting);
      this.show("#ad-conference", consulting);
      this.show("#ad-leave", Boolean(call.conference));
      this.show("#ad-conference-flag", Boolean(call.conference));
      this.fillTransferTargets(call.tenant ? this.loadedInfo(call.tenant) : null);
    }

    this.show("#ad-wrapup-skip", this.state === "wrap_up" && this.lastCall === null);
    const wrapping = this.lastCall !== null && (this.state === "wrap_up" || this.call === null);
    this.show("#ad-wrapup", wrapping && this.lastCall !== null);
    if (wrapping && this.lastCall) {
      const last = this.lastCall;
      this.text("#ad-wrapup-call", `${this.tenantName(last)} · ${this.caller(last)}`);
      this.fillDispositions(last.tenant ? this.loadedInfo(last.tenant) : null);
    }
  }

  private fillTransferTargets(info: ClientInfo | null): void {
    const select = this.el<HTMLSelectElement>("#ad-transfer-target");
    if (!select || !info || select.dataset.tenant === info.tenant) return;
    select.dataset.tenant = info.tenant;
    const options: HTMLElement[] = [new Option("—", "")];
    if (info.queues.length) {
      const group = document.createElement("optgroup");
      group.label = this.labels.queues;
      group.append(...info.queues.map((q) => new Option(q.name, `queue:${q.id}`)));
      options.push(group);
    }
    if (info.agents.length) {
      const group = document.createElement("optgroup");
      group.label = this.labels.agents;
      group.append(...info.agents.map((a) => new Option(a.name, `agent:${a.id}`)));
      options.push(group);
    }
    select.replaceChildren(...options);
  }

  private fillDispositions(info: ClientInfo | null): void {
    const select = this.el<HTMLSelectElement>("#ad-disposition");
    if (!select || !info || select.dataset.tenant === info.tenant) return;
    select.dataset.tenant = info.tenant;
    select.replaceChildren(
      new Option("—", ""),
      ...info.dispositions.map((d) => new Option(d.label, d.code)),
    );
  }

  private el<T extends HTMLElement>(selector: string): T | null {
    return this.root.querySelector<T>(selector);
  }

  private show(selector: string, visible: boolean): void {
    const el = this.el<HTMLElement>(selector);
    if (el && el.hidden === visible) el.hidden = !visible;
  }

  private text(selector: string, value: string): void {
    const el = this.el<HTMLElement>(selector);
    if (el && el.textContent !== value) el.textContent = value;
  }
}

declare global {
  interface Window {
    ccpAgentConsole?: AgentConsole;
  }
}

function startAgentConsole(): void {
  const root = document.getElementById("agent-console");
  const labelsNode = document.getElementById("agent-labels");
  if (!root || !labelsNode) return;
  const labels = JSON.parse(labelsNode.textContent ?? "{}") as Labels;
  const console_ = new AgentConsole(root, labels);
  window.ccpAgentConsole = console_;
  console_.start();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", startAgentConsole);
} else {
  startAgentConsole();
}
export {};
