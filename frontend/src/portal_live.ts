// A client's live page on its own portal (templates/portal/live.html, /ws/portal/live/).
//
// The same protocol as the provider's wallboard (snapshot on connect, deltas numbered per
// stream, `{"type": "resync"}` on a gap or a new epoch, reconnect with backoff), so it reuses
// its Wallboard class on the tenant's stream: the server only ever sends this tenant's queues
// and totals (agents counted by state, never named). Heartbeats come from the web process
// every few seconds with the stream's stored `seq`, so a lost last delta is noticed too.
import { startBoard, whenReady, type Wallboard } from "./wallboard";

declare global {
  interface Window {
    ccpPortalLive?: Wallboard;
  }
}

export function startPortalLive(): void {
  startBoard(
    "portal-live",
    "portal-live-labels",
    (board) => {
      window.ccpPortalLive = board;
    },
    "tenant",
  );
}

whenReady(startPortalLive);
