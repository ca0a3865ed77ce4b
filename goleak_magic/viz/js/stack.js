// Show the full creation stack of the table row the user clicked (as text, never HTML).
const i = table.selected.indices[0]
pre.text = i === undefined ? hint : `${table.data.site[i]}\n\n${table.data.stack[i]}`
