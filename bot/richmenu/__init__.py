"""Rich menus: the panel of big buttons under the chat, defined in ``knowledge/richmenus.yaml``.

``render`` draws a menu's image with Pillow and the shipped Thai font; ``definitions`` turns a
menu into LINE's ``RichMenuRequest``; ``deploy`` puts both on LINE through the adapter.
"""
