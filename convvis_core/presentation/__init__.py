"""Pictures for people, made from what the compute modules return: heat maps and class maps over
an image (``overlays``), a layer's channels as one grid (``channel_grids``), filter pictures as a
captioned grid (``filter_grids``), dataset examples and circuits as sheets (``sheets``) and the static
HTML site of an atlas (``site``). The pages, the CLI and the atlas's export all draw with these;
nothing in the compute modules imports them."""
