-- Keep every heading on one line: EPUBs often write "CHAPTER I.<br/>MY EAGLE", which gfm output
-- would turn into a multi-line setext heading.
function Header(el)
  el.content = el.content:walk({
    LineBreak = function(_) return pandoc.Space() end,
    SoftBreak = function(_) return pandoc.Space() end,
  })
  return el
end
