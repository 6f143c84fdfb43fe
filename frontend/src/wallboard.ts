// The provider's live wallboard (templates/routing/wallboard.html, /ws/live/), also used by
// a client's portal (templates/portal/live.html, /ws/portal/live/, portal_live.ts) with
// `data-scope="tenant"`: one tenant's stream, which has no client column and no agent list.
//
// The server sends a snapshot on connect, then deltas (records that changed, replaced whole)
// and heartbeats, each with the stream's `seq`. A delta must carry seq = last + 1 and the same
// `epoch`; anything else means a message was lost (or the switchboard restarted): ask for the
// snapshot again ({"type": "resync"}) and ignore deltas until it comes. While the socket is
// down the board is marked stale and reconnects with backoff (1 s doubling to 30 s, jittered);
// a new connection starts with a fresh snapshot. Longest waits tick locally from the oldest
// waiting call's time and the switch clock (`now` of the last message).

type Counts = Record<string, number>;

interface Figures {
  waiting: number;
  oldest_since: number | null;
  longest_wait_s: number;
  offered: number;
  answered: number;
  abandoned: number;
  service_level: number | null;
  agents: Counts;
}

interface QueueRecord extends Figures {
  id: string;
  name: string;
  tenant: string;
  sl_threshold_s: number;
}

interface TenantRecord extends Figures {
  id: string;
  name: string;
}

interface AgentRecord {
  id: string;
  name: string;
  state: string;
  reason: string | null;
  since: number;
}

interface Message {
  kind: "snapshot" | "delta" | "heartbeat";
  stream: string;
  epoch: string | null;
  seq: number;
  now: number | null;
  day: string | null;
  tz?: string;
  queues?: Record<string, QueueRecord>;
  tenants?: Record<string, TenantRecord>;
  agents?: Record<string, AgentRecord>;
  totals?: Figures | null;
}

interface Labels {
  states: Record<string, string>;
  live: string;
  connecting: string;
  reconnecting: string;
  silent: string;
  resyncing: string;
  forbidden: string;
  empty: string;
  day: string;
}

const STATE_ORDER = ["available", "offered", "on_call", "wrap_up", "break", "logged_out"];
const SILENT_AFTER_MS = 15_000; // the publisher sends a heartbeat every 5 s at least
const RESYNC_TIMEOUT_MS = 5_000;
const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404]);

export class Wallboard {
  private socket: WebSocket | null = null;
  private epoch: string | null = null;
  private seq = 0;
  private loaded = false;
  private queues: Record<string, QueueRecord> = {};
  private tenants: Record<string, TenantRecord> = {};
  private agents: Record<string, AgentRecord> = {};
  private totals: Figures | null = null;
  private day: string | null = null;
  private tz = "";
  private clockOffset = 0; // switch time - local time, seconds
  private lastMessageAt = 0;
  private resyncing = false;
  private resyncTimer: number | undefined;
  private backoffMs = 1000;
  private stopped = false;
  private renderQueued = false;
  resyncs = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly labels: Labels,
  ) {}

  start(): void {
    this.connect();
    window.setInterval(() => this.tick(), 1000);
  }

  // -- socket -------------------------------------------------------------------------------

  private connect(): void {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const path = this.root.dataset.wsPath ?? "/ws/live/";
    const socket = new WebSocket(`${scheme}//${location.host}${path}`);
    this.socket = socket;
    this.resyncing = true; // the server sends a snapshot first
    socket.addEventListener("open", () => {
      this.backoffMs = 1000;
    });
    socket.addEventListener("message", (event) => {
      let message: Message;
      try {
        message = JSON.parse(String(event.data)) as Message;
      } catch {
        return;
      }
      this.receive(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setStale(true, this.labels.reconnecting);
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.stopped = true;
        this.setStale(true, this.labels.forbidden);
        return;
      }
      const delay = Math.min(this.backoffMs, 30_000) * (0.8 + Math.random() * 0.4);
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
      window.setTimeout(() => this.connect(), delay);
    });
  }

  /** Ask for the snapshot again; deltas are ignored until it comes. */
  resync(): void {
    const socket = this.socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) return;
    this.resyncing = true;
    this.resyncs += 1;
    this.root.dataset.resyncs = String(this.resyncs);
    this.showStatus(this.labels.resyncing);
    socket.send(JSON.stringify({ type: "resync" }));
    window.clearTimeout(this.resyncTimer);
    // No snapshot in time: start over with a new connection (which begins with one).
    this.resyncTimer = window.setTimeout(() => {
      if (this.resyncing && this.socket === socket) socket.close();
    }, RESYNC_TIMEOUT_MS);
  }

  /** For tests and debugging: drop the connection as a network failure would. */
  dropConnection(): void {
    this.socket?.close();
  }

  // -- messages -----------------------------------------------------------------------------

  private receive(message: Message): void {
    this.lastMessageAt = Date.now();
    if (typeof message.now === "number") {
      this.clockOffset = message.now - Date.now() / 1000;
    }
    if (message.kind === "snapshot") {
      this.loadSnapshot(message);
    } else if (message.kind === "delta") {
      if (this.resyncing) return; // the snapshot on its way holds it
      if (message.epoch !== this.epoch || message.seq !== this.seq + 1) {
        this.resync();
        return;
      }
      this.applyDelta(message);
    } else if (message.kind === "heartbeat") {
      if (!this.resyncing && (message.epoch !== this.epoch || message.seq !== this.seq)) {
        this.resync(); // behind (a lost last delta) or a new switchboard run
        return;
      }
    }
    this.setStale(false, this.labels.live);
  }

  private loadSnapshot(message: Message): void {
    window.clearTimeout(this.resyncTimer);
    this.resyncing = false;
    this.loaded = message.epoch !== null;
    this.epoch = message.epoch;
    this.seq = message.seq;
    this.queues = { ...(message.queues ?? {}) };
    this.tenants = { ...(message.tenants ?? {}) };
    this.agents = { ...(message.agents ?? {}) };
    this.totals = message.totals ?? null;
    this.day = message.day;
    this.tz = message.tz ?? "";
    this.scheduleRender();
  }

  private applyDelta(message: Message): void {
    this.seq = message.seq;
    Object.assign(this.queues, message.queues ?? {});
    Object.assign(this.tenants, message.tenants ?? {});
    Object.assign(this.agents, message.agents ?? {});
    if (message.totals) this.totals = message.totals;
    this.day = message.day;
    this.tz = message.tz ?? this.tz;
    this.loaded = true;
    this.scheduleRender();
  }

  // -- state marker -------------------------------------------------------------------------

  private setStale(stale: boolean, text: string): void {
    this.root.dataset.stale = stale ? "1" : "0";
    if (!stale && this.resyncing) text = this.labels.resyncing;
    this.showStatus(text);
  }

  private showStatus(text: string): void {
    const status = this.root.querySelector<HTMLElement>("#wb-status");
    if (status && status.textContent !== text) status.textContent = text;
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.socket !== null && this.lastMessageAt > 0) {
      const silent = Date.now() - this.lastMessageAt > SILENT_AFTER_MS;
      if (silent) this.setStale(true, this.labels.silent);
    }
    this.renderWaits();
  }

  // -- rendering ----------------------------------------------------------------------------

  private scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    window.requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private switchNow(): number {
    return Date.now() / 1000 + this.clockOffset;
  }

  private wait(oldest: number | null): string {
    if (oldest === null) return "0:00";
    const seconds = Math.max(0, Math.floor(this.switchNow() - oldest));
    const m = Math.floor(seconds / 60);
    const s = seconds % 60;
    return `${m}:${String(s).padStart(2, "0")}`;
  }

  private percent(value: number | null): string {
    return value === null ? "—" : `${Math.round(value * 100)}%`;
  }

  private render(): void {
    this.root.dataset.seq = String(this.seq);
    const totals = this.totals;
    this.text("#wb-waiting", totals ? String(totals.waiting) : "—");
    this.text("#wb-sl", totals ? this.percent(totals.service_level) : "—");
    this.text("#wb-answered", totals ? String(totals.answered) : "—");
    this.text("#wb-abandoned", totals ? String(totals.abandoned) : "—");
    this.text(
      "#wb-day",
      this.day ? this.labels.day.replace("%(day)s", this.day).replace("%(tz)s", this.tz) : "",
    );
    this.renderStates(totals?.agents ?? {});
    this.renderQueues();
    this.renderTenants();
    this.renderWaits();
  }

  private renderWaits(): void {
    if (this.totals) {
      this.text("#wb-longest", this.totals.waiting ? this.wait(this.totals.oldest_since) : "0:00");
    }
    this.root.querySelectorAll<HTMLElement>("[data-oldest]").forEach((cell) => {
      const raw = cell.dataset.oldest ?? "";
      cell.textContent = this.wait(raw === "" ? null : Number(raw));
    });
  }

  private renderStates(counts: Counts): void {
    const list = this.root.querySelector<HTMLElement>("#wb-agents");
    if (!list) return;
    list.replaceChildren(
      ...STATE_ORDER.filter((state) => counts[state]).map((state) => {
        const item = document.createElement("li");
        item.dataset.state = state;
        const number = document.createElement("b");
        number.textContent = String(counts[state]);
        item.append(number, ` ${this.labels.states[state] ?? state}`);
        return item;
      }),
    );
  }

  private statesText(counts: Counts): string {
    return STATE_ORDER.filter((state) => state !== "logged_out" && counts[state])
      .map((state) => `${this.labels.states[state] ?? state}: ${counts[state]}`)
      .join(", ");
  }

  private renderQueues(): void {
    const body = this.root.querySelector<HTMLTableSectionElement>("#wb-queues tbody");
    if (!body) return;
    const queues = Object.values(this.queues).sort(
      (a, b) => this.tenantName(a.tenant).localeCompare(this.tenantName(b.tenant)) || a.name.localeCompare(b.name),
    );
    const perTenant = this.root.dataset.scope === "tenant";
    if (!queues.length) {
      body.replaceChildren(this.emptyRow(perTenant ? 8 : 9));
      return;
    }
    body.replaceChildren(
      ...queues.map((q) => {
        const row = document.createElement("tr");
        row.dataset.queue = q.id;
        if (!perTenant) row.append(this.cell(this.tenantName(q.tenant)));
        row.append(
          this.cell(q.name),
          this.cell(String(q.waiting), "num", "waiting"),
          this.waitCell(q),
          this.cell(String(q.offered), "num", "offered"),
          this.cell(String(q.answered), "num", "answered"),
          this.cell(String(q.abandoned), "num", "abandoned"),
          this.slCell(q.service_level),
          this.cell(this.statesText(q.agents)),
        );
        return row;
      }),
    );
  }

  private renderTenants(): void {
    const body = this.root.querySelector<HTMLTableSectionElement>("#wb-tenants tbody");
    if (!body) return;
    const tenants = Object.values(this.tenants).sort((a, b) => a.name.localeCompare(b.name));
    body.replaceChildren(
      ...tenants.map((t) => {
        const row = document.createElement("tr");
        row.dataset.tenant = t.id;
        row.append(
          this.cell(t.name),
          this.cell(String(t.waiting), "num", "waiting"),
          this.waitCell(t),
          this.cell(String(t.answered), "num", "answered"),
          this.cell(String(t.abandoned), "num", "abandoned"),
          this.slCell(t.service_level),
          this.cell(this.statesText(t.agents)),
        );
        return row;
      }),
    );
  }

  private tenantName(id: string): string {
    return this.tenants[id]?.name ?? id;
  }

  private cell(text: string, className = "", field = ""): HTMLTableCellElement {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    if (field) td.dataset.field = field;
    return td;
  }

  private waitCell(record: Figures): HTMLTableCellElement {
    const td = this.cell("", "num", "longest");
    td.dataset.oldest = record.waiting && record.oldest_since !== null ? String(record.oldest_since) : "";
    td.textContent = this.wait(record.waiting ? record.oldest_since : null);
    return td;
  }

  private slCell(value: number | null): HTMLTableCellElement {
    const td = this.cell(this.percent(value), "num", "sl");
    if (value !== null) td.classList.add(value >= 0.8 ? "good" : "bad");
    return td;
  }

  private emptyRow(span: number): HTMLTableRowElement {
    const row = document.createElement("tr");
    const td = this.cell(this.loaded ? "" : this.labels.empty, "empty");
    td.colSpan = span;
    row.append(td);
    return row;
  }

  private text(selector: string, value: string): void {
    const el = this.root.querySelector<HTMLElement>(selector);
    if (el && el.textContent !== value) el.textContent = value;
  }
}

declare global {
  interface Window {
    ccpWallboard?: Wallboard;
  }
}

/** Starts a board on the page's element `rootId` with the labels in the JSON script
 * `labelsId` (nothing on a page without them); `expose` gets the board before it connects.
 * `scope: "tenant"` marks one tenant's stream (see the top of this file). */
export function startBoard(
  rootId: string,
  labelsId: string,
  expose: (board: Wallboard) => void,
  scope?: "tenant",
): void {
  const root = document.getElementById(rootId);
  const labelsEl = document.getElementById(labelsId);
  if (!root || !labelsEl) return;
  if (scope) root.dataset.scope = scope;
  const labels = JSON.parse(labelsEl.textContent ?? "{}") as Labels;
  const board = new Wallboard(root, labels);
  expose(board);
  board.start();
}

/** Runs `start` once the document is parsed (at once if it already is). */
export function whenReady(start: () => void): void {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}

export function startWallboard(): void {
  startBoard("wallboard", "wallboard-labels", (board) => {
    window.ccpWallboard = board;
  });
}

whenReady(startWallboard);
