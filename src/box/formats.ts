/** The box formats vmfile package writes. Its own module so that the command's flags load without the packaging code. */
export const BOX_FORMATS = ['vmfile', 'vagrant-libvirt'] as const;
export type BoxFormat = (typeof BOX_FORMATS)[number];
