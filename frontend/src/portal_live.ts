// A client's live page on its own portal (templates/portal/live.html, /ws/portal/live/).
//
// The same protocol as the provider's wallboard (snapshot on connect, deltas numbered per
// stream, `{"type": "resync"}` on a gap or a new epoch, reconnect with backoff), so it reuses
// its Wallboard class on the tenant's stream: the server only ever sends this tenant's queues
// and totals (agents counted by state, never named). Heartbeats come from the web process
// every few seconds with the stream's stored `seq`, so a lost last delta is noticed too.
import { Wallboard } from "./wallboard";

interface PortalLabels {
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

declare global {
  interface Window {
    ccpPortalLive?: Wallboard;
  }
}

export function startPortalLive(): void {
  const root = document.getElementById("portal-live");
  const labelsEl = document.getElementById("portal-live-labels");
  if (!root || !labelsEl) return;
  root.dataset.scope = "tenant";
  const labels = JSON.parse(labelsEl.textContent ?? "{}") as PortalLabels;
  const board = new Wallboard(root, labels);
  window.ccpPortalLive = board;
  board.start();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", startPortalLive);
} else {
  startPortalLive();
}
