"""Step ``inject_metadata``: Glance's ``inject_image_metadata`` plugin."""

from __future__ import annotations

from flows.context import ImportContext


class InjectMetadataStep:
    """Adds the configured properties to the image, unless the requester has an exempt role."""

    name = "inject_metadata"

    async def execute(self, ctx: ImportContext) -> None:
        """Set every configured property (the configuration wins over the user's value)."""
        properties = ctx.settings.inject_properties
        if not properties or self._exempt(ctx):
            return
        await ctx.assert_holds()
        for name, value in properties.items():
            await ctx.images.set_property(ctx.image_id, name, value)

    @staticmethod
    def _exempt(ctx: ImportContext) -> bool:
        roles = set(ctx.requester.roles)
        if ctx.requester.is_admin:
            roles.add("admin")
        return bool(roles & set(ctx.settings.inject_ignore_roles))

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Leave the properties: Glance keeps them on a failed import too, and they are harmless."""
