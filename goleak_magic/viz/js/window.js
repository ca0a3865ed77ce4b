// Fill the linked table with the creation sites of the goroutines created in a window.
// Runs in the page, so it also works in exported HTML without a kernel.
// mode "box": cb_obj is a SelectionGeometry event; "spike": a spike was tapped;
// "refresh": agg changed (live stream), recompute for the current window.
// agg: counts per (bin, site code), sorted by bin; sites: per-site info by code.
const b = bin_ms
let x0, x1
if (mode === "box") {
  if (!cb_obj.final || cb_obj.geometry.type !== "rect") return  // taps: see "spike"
  x0 = cb_obj.geometry.x0
  x1 = cb_obj.geometry.x1
} else if (mode === "spike") {
  const i = spikes.selected.indices[0]
  if (i === undefined) return
  x0 = spikes.data.left[i]
  x1 = spikes.data.right[i]
} else {
  if (win.data.x0.length === 0) return
  x0 = win.data.x0[0]
  x1 = win.data.x1[0]
}
if (mode !== "refresh") {
  // Whole bins: those whose centre lies in the window, at least the one at its middle.
  let k0 = Math.ceil((x0 - b / 2) / b)
  let k1 = Math.floor((x1 - b / 2) / b)
  if (k1 < k0) k0 = k1 = Math.floor((x0 + x1) / 2 / b)
  x0 = k0 * b
  x1 = (k1 + 1) * b
  win.data = {x0: [x0], x1: [x1]}
}
const {bin, site, created, alive} = agg.data
let lo = 0, hi = bin.length
while (lo < hi) {
  const m = (lo + hi) >> 1
  if (bin[m] < x0) lo = m + 1; else hi = m
}
const n = new Map(), a = new Map()
for (let i = lo; i < bin.length && bin[i] < x1; i++) {
  n.set(site[i], (n.get(site[i]) ?? 0) + created[i])
  a.set(site[i], (a.get(site[i]) ?? 0) + alive[i])
}
// Most still alive first (the leak), then most created; alive is NaN when unknown.
const codes = [...n.keys()].sort((p, q) => (a.get(q) - a.get(p)) || n.get(q) - n.get(p) || p - q)
const s = sites.data
const col = (name) => codes.map((c) => s[name][c])
table.data = {
  site: col("site"), created: codes.map((c) => n.get(c)), alive: codes.map((c) => a.get(c)),
  blocked_at: col("blocked_at"), wait_reason: col("wait_reason"),
  blocked_for: col("blocked_for"), stack: col("stack"),
}
table.selected.indices = []
grid.view.change.emit()  // bokeh redraws a table only when its row count changes
const total = codes.reduce((t, c) => t + n.get(c), 0)
const hms = (t) => new Date(t).toISOString().slice(11, 23)
if (total > 0) {
  head.text = `${total.toLocaleString("en")} goroutines ${verb} between ${hms(x0)} and ` +
    `${hms(x1)} UTC, at ${codes.length} site${codes.length === 1 ? "" : "s"}. ${tail}`
} else if (bin.length > 0) {
  head.text = `No goroutines ${verb} between ${hms(x0)} and ${hms(x1)} UTC; the recording ` +
    `has them from ${hms(bin[0])} to ${hms(bin[bin.length - 1] + b)} UTC.`
} else {
  head.text = `No goroutine creations recorded yet: %dlvtrace or %schedsnap fill this table.`
}
